// Progress of long work on standard error: a redrawn bar on a terminal, plain lines otherwise.
import Foundation

public final class ProgressReporter {
    public let total: Int
    public let label: String
    public let isTerminal: Bool
    /// Plain mode prints every `plainEvery`-th update (and the last).
    public let plainEvery: Int
    private let start = Date()
    private let startCount: Int
    private var lastDraw = Date.distantPast

    public init(total: Int, label: String, startingAt: Int = 0, plainEvery: Int = 1, terminal: Bool? = nil) {
        self.total = total; self.label = label; self.startCount = startingAt; self.plainEvery = max(1, plainEvery)
        isTerminal = terminal ?? (isatty(2) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb")
    }

    /// Reports that `done` of `total` are finished, with extra `fields` ("loss 2.31", ...).
    public func update(_ done: Int, fields: [String] = []) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(done - startCount) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        if isTerminal {
            if done < total && Date().timeIntervalSince(lastDraw) < 0.1 { return }
            lastDraw = Date()
            let width = 24, filled = total > 0 ? min(width, width * done / total) : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = "\(label) \(bar) \(done)/\(total) " + fields.joined(separator: " ")
                + String(format: " %.2f it/s ETA %@", rate, ProgressReporter.duration(eta))
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (done >= total ? "\n" : "")).utf8))
        } else if done % plainEvery == 0 || done >= total {
            let line = "\(label) \(done)/\(total) " + fields.joined(separator: " ")
                + String(format: " %.2f it/s elapsed %@ eta %@", rate, ProgressReporter.duration(elapsed), ProgressReporter.duration(eta))
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// Prints a message on its own line without breaking the bar.
    public func message(_ text: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }

    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
