// JSON Lines files: one JSON object per line; errors name the file and the line.
import Foundation
import GLMCore

/// One parsed line of a JSONL file.
public struct JSONLine {
    public let file: String
    /// 1-based line number.
    public let line: Int
    public let object: [String: Any]

    /// "FILE:LINE" for error messages.
    public var location: String { "\(file):\(line)" }

    /// The integer array under `key`, or nil when the key is absent; an error naming the line otherwise.
    public func intArray(_ key: String) throws -> [Int32]? {
        guard let value = object[key] else { return nil }
        guard let array = value as? [Any] else { throw GLMError("\(location): \"\(key)\" must be an array of integers") }
        return try array.enumerated().map { i, item in
            guard let n = item as? NSNumber, !JSONLines.isBoolean(n), case let d = n.doubleValue, d.rounded() == d,
                  abs(d) < 2_147_483_648 else {
                throw GLMError("\(location): \"\(key)\"[\(i)] is \(JSONLines.shown(item)); expected an integer that fits 32 bits")
            }
            return Int32(d)
        }
    }

    /// The string under `key`, or nil when absent; an error naming the line when it is not a string.
    public func string(_ key: String) throws -> String? {
        guard let value = object[key] else { return nil }
        guard let s = value as? String else { throw GLMError("\(location): \"\(key)\" must be a string") }
        return s
    }
}

public enum JSONLines {
    /// Reads every non-blank line of `path` as a JSON object.
    public static func read(_ path: String) throws -> [JSONLine] {
        try parse(try FileInput.read(path), file: path)
    }

    /// Every non-blank line of `data` (the text of `path`, named in errors) as a JSON object.
    public static func parse(_ data: Data, file path: String) throws -> [JSONLine] {
        var lines: [JSONLine] = []
        var number = 0
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            if raw.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            // Foundation's parser recurses once per level: a line of 100,000 brackets would overflow the stack.
            try NestingDepth.checkJSON(raw, source: "\(path):\(number)")
            let obj: Any
            do { obj = try jsonObject(Data(raw)) } catch {
                let text = String(decoding: raw, as: UTF8.self)
                let why = text.utf8.elementsEqual(raw) ? "invalid JSON" : "invalid UTF-8"
                throw GLMError("\(path):\(number): not a JSON object (\(why)); expected one JSON object per line")
            }
            guard let dict = obj as? [String: Any] else {
                throw GLMError("\(path):\(number): not a JSON object; expected one JSON object per line")
            }
            lines.append(JSONLine(file: path, line: number, object: dict))
        }
        return lines
    }

    /// `JSONSerialization.jsonObject`, except that a raw U+FEFF inside a string is kept: Foundation drops one that
    /// opens a string (it takes it for a byte-order mark). Such characters are escaped as `\ufeff` first; a true
    /// byte-order mark at the very start of the text is left for the parser to skip.
    public static func jsonObject(_ data: Data) throws -> Any {
        let bom = Data([0xEF, 0xBB, 0xBF])
        guard data.count > 3, data.dropFirst().firstRange(of: bom) != nil else {
            return try JSONSerialization.jsonObject(with: data)
        }
        var escaped = Data(data.prefix(1))
        escaped.append(contentsOf: data.dropFirst().split(separator: bom, omittingEmptySubsequences: false)
            .map { Data($0) }.joined(separator: Data("\\ufeff".utf8)))
        return try JSONSerialization.jsonObject(with: escaped)
    }

    /// Whether a JSONSerialization number is a JSON true/false.
    static func isBoolean(_ n: NSNumber) -> Bool {
        let t = String(cString: n.objCType)
        return t == "c" || t == "B"
    }

    /// A parsed value for an error message: one line, at most 48 characters.
    static func shown(_ value: Any) -> String {
        if let n = value as? NSNumber, isBoolean(n) { return n.boolValue ? "true" : "false" }
        let s = "\(value)".split(whereSeparator: \.isNewline).joined(separator: " ")
        return s.count > 48 ? String(s.prefix(48)) + "…" : s
    }

    /// One compact JSON line (keys sorted) for `object`.
    public static func encode(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Writes lines atomically to `path`, or to standard output when `path` is nil.
    public static func write(_ lines: [String], to path: String?) throws {
        let text = lines.map { $0 + "\n" }.joined()
        if let path { try AtomicFile.write(Data(text.utf8), to: path) }
        else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }
}
