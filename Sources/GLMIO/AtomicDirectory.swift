// Crash-safe directory publishing: a directory is written under a temporary name beside its destination, fsynced,
// and renamed into place, so that readers (and whoever looks after a SIGKILL or power loss) never see it half-written.
import Foundation
import GLMCore

/// Publishes whole directories atomically, and resolves pointer files (such as `latest`) naming one of them.
///
/// `publish(_:pointer:fill:)` goes through these steps; what a reader of `path` can observe at each instant, and what
/// is left after a SIGKILL (or power loss) at that point:
///
/// 1. Leftovers of dead writers in the parent are removed (entries starting with `temporaryPrefix`, see
///    `removeLeftovers`). Reader: the old directory (or none). Killed here: as before.
/// 2. `PARENT/.glmtrain-tmp-HOST-PID-RANDOM-NAME` is created and the closure fills it. Reader: the old directory
///    (or none). Killed here: the old directory is intact; the temporary one is a leftover for step 1 of the next
///    publish.
/// 3. Every file and directory inside it, and the directory itself, is fsynced.
/// 4. Into place. With no old directory: `rename(tmp, path)` — the reader sees nothing, then the whole new directory.
///    Replacing an old directory on Linux: `renameat2(RENAME_EXCHANGE)` swaps the two names in one step — the reader
///    sees the old complete directory, then the new complete one, never neither. On file systems without the exchange
///    (and on other systems) the old directory is first renamed aside to a temporary name, then the new one is renamed
///    in: between the two renames (microseconds) `path` is absent; a SIGKILL exactly there leaves `path` absent with
///    both complete directories under temporary names (the old one is not lost; the next publish removes both).
/// 5. The parent is fsynced (the rename is durable), then the old directory — now under a temporary name — is
///    removed. Killed before the removal: the old directory is a leftover for step 1.
/// 6. With `pointer`, the file `PARENT/POINTER` is replaced by `AtomicFile.write` with the directory's name. The
///    pointer is written only after step 5, so it never names a directory that is not complete and durable.
///
/// A reader holding files open in a directory that is then replaced keeps reading the old (unlinked) files. A reader
/// that opens several files by path while a writer replaces the same name may mix the two versions: writers whose
/// readers need one consistent version publish each version under a new name (`v000001`, `v000002`, ...) and update
/// a pointer, and readers resolve it with `resolve(pointer:)` once.
///
/// Leftovers are recognised by `temporaryPrefix`. The next publish in the same parent removes those whose writer is
/// gone: written on this host by a process that no longer runs, or (on a file system shared between hosts) older than
/// a day. Live writers' temporary directories are left alone, so several processes may publish in one parent.
public enum AtomicDirectory {
    /// The name prefix of temporary directories (being written, or old ones being removed).
    public static let temporaryPrefix = ".glmtrain-tmp-"

    /// Writes the directory `path` by calling `fill` with a fresh empty temporary directory next to it, then publishes
    /// it in place of any older directory `path` (see the type's documentation for the steps and what readers can see).
    /// With `pointer` (a file name in the same parent), that file is then atomically set to `path`'s last component.
    /// A file in the way, or a parent that cannot be created or written, is a one-line error naming the path; when
    /// `fill` throws, the temporary directory is removed, the older directory stays, and the error names `path`
    /// instead of the temporary name.
    ///
    /// `replacing` guards what an older directory at `path` may hold: when given, an older directory with a
    /// subdirectory or a file it does not accept is not replaced (a one-line error naming the entry), so that an
    /// export pointed at the wrong place (a home directory, a folder of models) never deletes someone's files.
    public static func publish(_ path: String, pointer: String? = nil, replacing accepts: ((String) -> Bool)? = nil,
                               fill: (String) throws -> Void) throws {
        let dest = try destination(path)
        if let accepts, let entries = try? FileManager.default.contentsOfDirectory(atPath: dest) {
            for entry in entries.sorted() {
                var isDir: ObjCBool = false
                _ = FileManager.default.fileExists(atPath: "\(dest)/\(entry)", isDirectory: &isDir)
                if isDir.boolValue || !accepts(entry) {
                    throw GLMError("\(path): exists and holds '\(entry)', which is not part of what is written there; refusing to replace it (choose a new or empty directory)")
                }
            }
        }
        let parent = (dest as NSString).deletingLastPathComponent
        let name = (dest as NSString).lastPathComponent
        guard !name.isEmpty, name != ".", name != "..", !name.hasPrefix(temporaryPrefix) else {
            throw GLMError("\(path): not a name a directory can be published under")
        }
        try AtomicFile.makeDirectory(parent.isEmpty ? "." : parent)
        let dir = parent.isEmpty ? "." : parent
        removeLeftovers(in: dir)

        let tmp = "\(dir)/\(temporaryName(for: name))"
        guard mkdir(tmp, 0o755) == 0 else {
            throw GLMError("\(path): cannot create directory (\(String(cString: strerror(errno))))")
        }
        do {
            try fill(tmp)
            try syncTree(tmp)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            if let e = error as? GLMError { throw GLMError(e.message.replacingOccurrences(of: tmp, with: path)) }
            throw error
        }

        let old = try moveIntoPlace(tmp, dest, path: path, parent: dir, name: name)
        syncDirectory(dir)
        if let old { try? FileManager.default.removeItem(atPath: old) }
        if let pointer { try write(pointer: "\(dir)/\(pointer)", naming: name) }
    }

    /// Atomically sets the pointer file `pointerPath` to `name`, a sibling directory that is already complete and
    /// durable (one `publish` wrote; `publish(_:pointer:)` ends with this).
    public static func write(pointer pointerPath: String, naming name: String) throws {
        try AtomicFile.write(Data((name + "\n").utf8), to: pointerPath)
    }

    /// The directory named by the pointer file `pointerPath` (a sibling of the pointer), or nil when there is no
    /// pointer yet. Because pointers are written only after their directory is complete and durable, the directory
    /// returned is complete; a pointer naming something else than a plain sibling name, or a directory that is gone,
    /// is an error naming the pointer file.
    public static func resolve(pointer pointerPath: String) throws -> String? {
        guard let data = FileManager.default.contents(atPath: pointerPath) else {
            if FileManager.default.fileExists(atPath: pointerPath) { throw GLMError("\(pointerPath): unreadable") }
            return nil
        }
        let name = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix("."), data.count <= 4096 else {
            throw GLMError("\(pointerPath): expected the name of a directory beside it")
        }
        let parent = (pointerPath as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? name : "\(parent)/\(name)"
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw GLMError("\(pointerPath): names \(name), which is not a directory in \(parent.isEmpty ? "." : parent)")
        }
        return dir
    }

    /// Removes leftover temporary directories (`temporaryPrefix`) in `parent` whose writer is gone: written on this
    /// host by a process that no longer runs, or written on another host more than a day ago. Returns their names.
    @discardableResult
    public static func removeLeftovers(in parent: String) -> [String] {
        let fm = FileManager.default
        guard let entries = try? fm.contentsOfDirectory(atPath: parent) else { return [] }
        var removed: [String] = []
        let host = hostName()
        for entry in entries where entry.hasPrefix(temporaryPrefix) {
            let fields = entry.dropFirst(temporaryPrefix.count).split(separator: "-", maxSplits: 3, omittingEmptySubsequences: false)
            let full = "\(parent)/\(entry)"
            let gone: Bool
            if fields.count == 4, String(fields[0]) == host, let pid = Int32(fields[1]) {
                gone = pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
            } else {
                let modified = (try? fm.attributesOfItem(atPath: full)[.modificationDate] as? Date) ?? nil
                gone = modified.map { Date().timeIntervalSince($0) > 86_400 } ?? false
            }
            if gone, (try? fm.removeItem(atPath: full)) != nil { removed.append(entry) }
        }
        if !removed.isEmpty { syncDirectory(parent) }
        return removed
    }

    // MARK: steps

    /// `path` with a symbolic link in its last component followed (the directory it points at is replaced, not the
    /// link), and a trailing slash dropped; a non-directory in the way is an error.
    static func destination(_ path: String) throws -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        var st = stat()
        for _ in 0..<8 where lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: p) else { break }
            p = target.hasPrefix("/") ? target : ((p as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
        }
        if lstat(p, &st) == 0 && (st.st_mode & S_IFMT) != S_IFDIR {
            throw GLMError("\(path): exists and is not a directory")
        }
        return p
    }

    static func temporaryName(for name: String) -> String {
        // The name part is cut so that the whole stays within NAME_MAX (255 bytes).
        "\(temporaryPrefix)\(hostName())-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(String(decoding: Array(name.utf8.prefix(128)), as: UTF8.self))"
    }

    /// This host's name with dashes replaced (the fields of a temporary name are separated by dashes), at most 64 characters.
    static func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let raw = String(cString: buf)
        return raw.isEmpty ? "localhost" : String(raw.replacingOccurrences(of: "-", with: "_").replacingOccurrences(of: "/", with: "_").prefix(64))
    }

    /// Renames `tmp` to `dest`; an older directory at `dest` ends up under a temporary name, which is returned.
    static func moveIntoPlace(_ tmp: String, _ dest: String, path: String, parent: String, name: String) throws -> String? {
        func failure() -> GLMError { GLMError("\(path): cannot rename the new directory into place (\(String(cString: strerror(errno))))") }
        var st = stat()
        guard lstat(dest, &st) == 0 else {
            guard rename(tmp, dest) == 0 else { let e = failure(); try? FileManager.default.removeItem(atPath: tmp); throw e }
            return nil
        }
        if exchange(tmp, dest) { return tmp }
        let aside = "\(parent)/\(temporaryName(for: name))"
        guard rename(dest, aside) == 0 else { let e = failure(); try? FileManager.default.removeItem(atPath: tmp); throw e }
        guard rename(tmp, dest) == 0 else {
            let e = failure()
            _ = rename(aside, dest)
            try? FileManager.default.removeItem(atPath: tmp)
            throw e
        }
        return aside
    }

    /// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE); false when the system or file system
    /// cannot, in which case nothing changed.
    static func exchange(_ a: String, _ b: String) -> Bool {
        #if os(Linux)
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        guard let fn = renameat2 else { return false }
        let atFDCWD: Int32 = -100, renameExchange: UInt32 = 2
        return unsafeBitCast(fn, to: RenameAt2.self)(atFDCWD, a, atFDCWD, b, renameExchange) == 0
        #else
        return false
        #endif
    }

    #if os(Linux)
    /// glibc's renameat2 (2.28+), looked up once: Swift's Glibc module does not declare it.
    nonisolated(unsafe) static let renameat2: UnsafeMutableRawPointer? = dlsym(dlopen(nil, RTLD_NOW), "renameat2")
    #endif

    /// fsyncs every regular file and directory below `root`, then `root` itself.
    static func syncTree(_ root: String) throws {
        let fm = FileManager.default
        for entry in try fm.contentsOfDirectory(atPath: root) {
            let p = "\(root)/\(entry)"
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: try syncTree(p)
            case S_IFREG:
                let fd = open(p, O_RDONLY)
                guard fd >= 0, fsync(fd) == 0 else {
                    let why = String(cString: strerror(errno))
                    if fd >= 0 { close(fd) }
                    throw GLMError("\(p): fsync failed (\(why))")
                }
                close(fd)
            default: continue
            }
        }
        guard syncDirectory(root) else { throw GLMError("\(root): fsync failed (\(String(cString: strerror(errno))))") }
    }

    /// fsyncs a directory (making renames and creations in it durable); false when that failed.
    @discardableResult
    static func syncDirectory(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return fsync(fd) == 0
    }
}
