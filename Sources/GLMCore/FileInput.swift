// Reading an input file whole, with an error that says why it cannot be read: missing, a directory, no permission.
// Reads through a file handle, so pipes and devices (`/dev/stdin`, `<(...)`, `/dev/null`) work as files do.
import Foundation

public enum FileInput {
    /// Bytes a data file (JSONL) may hold: a quarter of the memory this process may use (`MemoryBudget`), since it
    /// is read whole and then parsed.
    public static let maxDataBytes = MemoryBudget.available / 4

    /// The bytes of `path`, at most `limit` of them (a device such as /dev/zero never ends); `hint` (e.g. "a model
    /// directory needs config.json") follows the reason in errors.
    public static func read(_ path: String, hint: String? = nil, limit: Int = maxDataBytes) throws -> Data {
        let suffix = hint.map { "; \($0)" } ?? ""
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw GLMError("\(path): missing (no such file)\(suffix)")
        }
        guard !isDirectory.boolValue else { throw GLMError("\(path): is a directory; expected a file\(suffix)") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw GLMError("\(path): cannot read (no permission)\(suffix)")
        }
        defer { try? handle.close() }
        var data = Data()
        // A regular file's size is known: one allocation of its size (appending 1 MiB chunks doubles the buffer,
        // which can need twice the file's size at once).
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG {
            guard Int(info.st_size) <= limit else { throw GLMError("\(path): more than \(limit) bytes; not read\(suffix)") }
            data.reserveCapacity(Int(info.st_size))
        }
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                guard chunk.count <= limit - data.count else {
                    throw GLMError("\(path): more than \(limit) bytes; not read\(suffix)")
                }
                data.append(chunk)
            }
        } catch let e as GLMError { throw e }
        catch { throw GLMError("\(path): cannot read (\(String(describing: error).split(separator: "\n").first ?? ""))\(suffix)") }
        return data
    }

    /// `path` memory-mapped (safetensors, GGUF): a regular file only, since a pipe or a device cannot be mapped;
    /// `kind` names what was expected ("safetensors").
    public static func mapped(_ path: String, kind: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw GLMError("\(path): missing (no such file); expected a \(kind) file")
        }
        guard !isDirectory.boolValue else { throw GLMError("\(path): is a directory; expected a \(kind) file") }
        var info = stat()  // follows symlinks (a Hugging Face cache links to its blobs)
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw GLMError("\(path): not a regular file (a pipe or a device); \(kind) files are memory-mapped, so give a file on disk")
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) }
        catch { throw GLMError("\(path): cannot read (\(error.localizedDescription))") }
    }

    /// What a program run by GLMTrain (an evaluation hook, a reward command) may print on stdout: 64 MiB.
    public static let maxProgramOutputBytes = 64 << 20

    /// `handle` (a child's stdout) read to its end, keeping at most `limit` bytes; `overflowed` when more came — then
    /// reading stops there, and the caller stops the program.
    public static func readOutput(_ handle: FileHandle, limit: Int = maxProgramOutputBytes) -> (data: Data, overflowed: Bool) {
        var data = Data()
        while let chunk = try? handle.read(upToCount: 1 << 16), !chunk.isEmpty {
            guard chunk.count <= limit - data.count else { return (data, true) }
            data.append(chunk)
        }
        return (data, false)
    }
}
