// RUN/metrics.jsonl: one JSON object per line, flushed as it is written, cut back to a step on resume.
import Foundation
import GLMCore
import GLMIO

public final class MetricsLog {
    public let path: String
    private var handle: FileHandle?

    /// Opens `path` for appending. With `keepThrough`, lines of later steps (written after the checkpoint a run
    /// resumes from) are dropped first, by rewriting the file atomically; without it the file starts empty.
    public init(path: String, keepThrough step: Int?) throws {
        self.path = path
        let fm = FileManager.default
        if let step, let data = fm.contents(atPath: path) {
            var kept: [Substring] = []
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = (obj["step"] as? NSNumber)?.intValue else { continue }  // a torn last line
                if s <= step { kept.append(line) }
            }
            try AtomicFile.write(Data((kept.map { $0 + "\n" }.joined()).utf8), to: path)
        } else {
            try AtomicFile.write(Data(), to: path)
        }
        handle = FileHandle(forWritingAtPath: path)
        guard handle != nil else { throw GLMError("\(path): cannot open for writing") }
        handle?.seekToEndOfFile()
    }

    public func append(_ record: [String: Any]) throws {
        for (key, value) in record {
            if let d = value as? Double, !d.isFinite {
                throw GLMError("\(path): metric '\(key)' is \(d) at step \(record["step"] ?? "?"); JSON has no NaN or Inf (check the data, optimizer.lr or the hook)")
            }
        }
        let line = try JSONLines.encode(record) + "\n"
        do { try handle?.write(contentsOf: Data(line.utf8)) }
        catch { throw GLMError("\(path): cannot append a metrics line (\(String(cString: strerror(errno))); disk full?)") }
    }

    /// Reads a metrics file into its records (skipping a torn last line).
    public static func read(_ path: String) throws -> [[String: Any]] { try readCounting(path).records }

    /// The records and how many lines other than a torn last one are not JSON objects.
    public static func readCounting(_ path: String) throws -> (records: [[String: Any]], bad: Int) {
        let data = try FileInput.read(path)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        var records: [[String: Any]] = [], bad = 0
        for (i, line) in lines.enumerated() {
            if let r = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { records.append(r) }
            else if i < lines.count - 1 || data.last == 0x0A { bad += 1 }
        }
        return (records, bad)
    }

    deinit { try? handle?.close() }
}
