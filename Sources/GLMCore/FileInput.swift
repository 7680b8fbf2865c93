// Reading an input file whole, with an error that says why it cannot be read: missing, a directory, no permission.
// Reads through a file handle, so pipes and devices (`/dev/stdin`, `<(...)`, `/dev/null`) work as files do.
import Foundation

public enum FileInput {
    /// The bytes of `path`; `hint` (e.g. "a model directory needs config.json") follows the reason in errors.
    public static func read(_ path: String, hint: String? = nil) throws -> Data {
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
        do { return try handle.readToEnd() ?? Data() }
        catch { throw GLMError("\(path): cannot read (\(String(describing: error).split(separator: "\n").first ?? ""))\(suffix)") }
    }
}
