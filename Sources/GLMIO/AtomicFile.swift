// Crash-safe file writes: write to a temporary name in the same directory, fsync, rename, fsync the directory.
import Foundation
import GLMCore

public enum AtomicFile {
    /// Creates the directory `path` (and its parents) unless it exists; a file in the way or a directory that
    /// cannot be written is a one-line error naming the path.
    public static func makeDirectory(_ path: String) throws {
        guard !path.isEmpty else { throw GLMError("an empty directory name; expected a path") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw GLMError("\(path): exists and is not a directory") }
            guard access(path, W_OK) == 0 else { throw GLMError("\(path): directory is not writable") }
            return
        }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        catch {
            var parent = (path as NSString).deletingLastPathComponent
            while !parent.isEmpty && !FileManager.default.fileExists(atPath: parent) { parent = (parent as NSString).deletingLastPathComponent }
            var parentIsDir: ObjCBool = false
            let parentExists = !parent.isEmpty && FileManager.default.fileExists(atPath: parent, isDirectory: &parentIsDir)
            var link = stat()
            let why: String
            if parentExists && !parentIsDir.boolValue { why = "cannot create directory (\(parent) is a file)" }
            else if lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK { why = "cannot create directory (it is a symbolic link to a missing target)" }
            else if parentExists && access(parent, W_OK) != 0 { why = "cannot create directory (\(parent) is not writable)" }
            else { why = "cannot create directory (\((error as NSError).localizedFailureReason ?? error.localizedDescription))" }
            throw GLMError("\(path): \(why)")
        }
    }

    /// Replaces `path` with `data` so that readers see either the old file or the whole new one; the data and then
    /// (after the rename) the directory holding `path` are fsynced, so the new file survives a power loss.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw GLMError("\(path): cannot create (\(String(cString: strerror(errno))))") }
        var ok = true
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { ok = false; break }
                done += n
            }
        }
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw GLMError("\(path): write failed (\(String(cString: strerror(errno))))")
        }
        // The rename is durable once the directory holding it is synced.
        let parent = (path as NSString).deletingLastPathComponent
        AtomicDirectory.syncDirectory(parent.isEmpty ? "." : parent)
    }
}
