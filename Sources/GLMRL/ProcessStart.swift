// When a process of this machine started (Linux /proc): its start time in clock ticks after boot, from field 22 of
// /proc/PID/stat, and as a date (with /proc/stat's btime). RL claims record their holder's, so that a pid the
// kernel has since given to another process is not taken for the holder.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum ProcessStart {
    /// Field 22 (starttime) of /proc/PID/stat, or nil when the process does not exist (or /proc is not there).
    static func ticks(_ pid: Int32) -> UInt64? {
        // read as bytes: the command name in it need not be UTF-8
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        // after "pid (comm)" come fields 3, 4, ...: starttime (22) is the 20th of them
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// The process's start as a date, or nil.
    static func date(_ pid: Int32) -> Date? {
        guard let t = ticks(pid), let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) else { return nil }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return Date(timeIntervalSince1970: boot + Double(t) / max(hz, 1))
    }
}
