// Crash-safe file writes: write to a temporary name in the same directory, fsync, rename.
import Foundation
import GLMCore

public enum AtomicFile {
    /// Replaces `path` with `data` so that readers see either the old file or the whole new one.
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
    }
}
