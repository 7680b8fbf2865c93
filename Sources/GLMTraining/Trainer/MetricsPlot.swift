// SVG line plots of a run's metrics: one file per metric (loss, lr, grad norm, every eval metric), against step.
import Foundation
import GLMCore
import GLMIO

public enum MetricsPlot {
    /// Metrics not worth a plot of their own.
    static let skipped: Set<String> = ["step", "epoch", "truncated", "loss_tokens"]

    /// Plots written at most (metric names come from eval hook programs too: 20,000 names took minutes).
    public static let maxPlots = 1000

    /// Writes `<metric>.svg` for every numeric metric of `metrics` into `directory` (the first `maxPlots` names in
    /// order; `warn` says so when there are more, and how many lines were not JSON records); returns the files.
    @discardableResult
    public static func writeAll(metrics: String, to directory: String, warn: (String) -> Void = { _ in }) throws -> [String] {
        let (records, bad) = try MetricsLog.readCounting(metrics)
        if bad > 0 { warn("\(metrics): \(bad) line\(bad == 1 ? " is" : "s are") not a JSON object; skipped") }
        var series: [String: [(Double, Double)]] = [:]
        for r in records {
            guard let step = (r["step"] as? NSNumber)?.doubleValue else { continue }
            for (k, v) in r where !skipped.contains(k) && !k.hasSuffix("/count") && !k.hasSuffix("/tokens") && !k.hasSuffix("/correct") {
                if let n = v as? NSNumber, n.doubleValue.isFinite { series[k, default: []].append((step, n.doubleValue)) }
            }
        }
        guard !series.isEmpty else { throw GLMError("\(metrics): no metrics to plot") }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        catch { throw GLMError("\(directory): cannot create (\(error.localizedDescription))") }
        var written: [String] = [], used: Set<String> = []
        if series.count > maxPlots {
            warn("\(metrics): \(series.count) metric names; plotting the first \(maxPlots) in order")
        }
        for key in series.keys.sorted().prefix(maxPlots) {
            var name = fileName(key)
            if used.contains(name) { name = fileName(key, tagged: true) }
            var n = 2
            while used.contains(name) { name = fileName(key, tagged: true) + "-\(n)"; n += 1 }  // a name made to meet a hash
            used.insert(name)
            let file = (directory as NSString).appendingPathComponent(name + ".svg")
            let points = series[key]!
            let smooth = key == "loss" && points.count > 20 ? exponentialAverage(points, alpha: 0.1) : nil
            try AtomicFile.write(Data(svg(title: key, points: points, smoothed: smooth).utf8), to: file)
            written.append(file)
        }
        return written
    }

    /// A file name (without ".svg") for a metric: "/" becomes "_" as before; any character other than ASCII letters,
    /// digits, "-", "_", "." (metric names come from eval hook programs: NUL, newlines, "..") becomes "_", names are
    /// cut to 120 characters, and a name changed that way — or `tagged` (two metrics met on one name) — ends in a
    /// hash of the metric's name so that no two metrics share a file.
    static func fileName(_ key: String, tagged: Bool = false) -> String {
        let plain = key.replacingOccurrences(of: "/", with: "_")
        var out = String(String.UnicodeScalarView(plain.unicodeScalars.map { c in
            c.isASCII && (CharacterSet.alphanumerics.contains(c) || "-_.".unicodeScalars.contains(c)) ? c : "_"
        }))
        if out.hasPrefix(".") { out = "_" + out.dropFirst() }
        guard tagged || out != plain || out.count > 120 || out.isEmpty else { return out }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a of the metric's UTF-8
        for b in key.utf8 { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(out.prefix(120)) + "-" + String(hash, radix: 16)
    }

    static func exponentialAverage(_ p: [(Double, Double)], alpha: Double) -> [(Double, Double)] {
        var out: [(Double, Double)] = [], s = p[0].1
        for (x, y) in p { s = alpha * y + (1 - alpha) * s; out.append((x, s)) }
        return out
    }

    /// "Nice" tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        let span = max(hi - lo, 1e-12)
        let raw = span / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        // Ticks by index, not by repeated addition: a step below half an ULP of the values (a range a few ULPs wide at
        // a large magnitude) would never advance `t`. Bounded and deduplicated whatever the values are.
        let first = ceil(lo / step), last = floor(hi / step + 1e-9)
        guard step.isFinite, step > 0, first.isFinite, last.isFinite, last >= first, last - first <= Double(4 * count) else {
            return lo.isFinite && hi.isFinite ? (lo == hi ? [lo] : [lo, hi]) : []
        }
        var out: [Double] = []
        for i in 0...Int(last - first) {
            let t = (first + Double(i)) * step
            if out.last != t { out.append(t) }
        }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.1e", v) }
        return String(format: "%g", (v * 1e4).rounded() / 1e4)
    }

    /// Text for the SVG: XML's special characters escaped, and characters XML does not allow (NUL and the other
    /// controls but tab and newline) shown as U+FFFD.
    static func escape(_ s: String) -> String {
        let allowed = String(String.UnicodeScalarView(s.unicodeScalars.map { c in
            c.value < 0x20 && c != "\t" && c != "\n" || c.value == 0xFFFE || c.value == 0xFFFF ? "\u{FFFD}" : c
        }))
        return allowed.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// One SVG document: axes with ticks, the series as a polyline (points when few), an optional smoothed line.
    public static func svg(title: String, points: [(Double, Double)], smoothed: [(Double, Double)]? = nil) -> String {
        let (w, h, left, right, top, bottom) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0)
        var xLo = points.map(\.0).min()!, xHi = points.map(\.0).max()!
        var yLo = points.map(\.1).min()!, yHi = points.map(\.1).max()!
        // A range within rounding of its magnitude (values a few ULPs apart) is drawn as a constant. Differences are
        // taken of halves, so that a range across ±1e308 does not overflow to infinity.
        func width(_ lo: Double, _ hi: Double) -> Double { hi / 2 - lo / 2 }
        if width(xLo, xHi) <= max(abs(xLo), abs(xHi)) * 1e-12 { let d = max(abs(xLo) * 1e-3, 1); xLo -= d; xHi += d }
        if width(yLo, yHi) <= max(abs(yLo), abs(yHi)) * 1e-12 { let d = max(abs(yLo) * 0.1, 1e-6); yLo -= d; yHi += d }
        let pad = width(yLo, yHi) * 0.1; yLo -= pad; yHi += pad
        func X(_ x: Double) -> Double { left + width(xLo, x) / width(xLo, xHi) * (w - left - right) }
        func Y(_ y: Double) -> Double { h - bottom - width(yLo, y) / width(yLo, yHi) * (h - top - bottom) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(w / 2)" y="22" text-anchor="middle" font-size="15">\(escape(title))</text>

        """
        for t in ticks(yLo, yHi) {
            s += "<line x1=\"\(left)\" x2=\"\(w - right)\" y1=\"\(Y(t))\" y2=\"\(Y(t))\" stroke=\"#e5e5e5\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(Y(t) + 4)\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        for t in ticks(xLo, xHi) {
            s += "<line x1=\"\(X(t))\" x2=\"\(X(t))\" y1=\"\(h - bottom)\" y2=\"\(h - bottom + 5)\" stroke=\"black\"/>"
            s += "<text x=\"\(X(t))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        s += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        s += "<text x=\"\(w / 2)\" y=\"\(h - 12)\" text-anchor=\"middle\">step</text>\n"
        func polyline(_ p: [(Double, Double)], _ color: String, _ width: Double) -> String {
            "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(width)\" points=\""
                + p.map { String(format: "%.1f,%.1f", X($0.0), Y($0.1)) }.joined(separator: " ") + "\"/>\n"
        }
        s += polyline(points, smoothed == nil ? "#1f77b4" : "#9ecae1", 1.5)
        if points.count <= 30 {
            for (x, y) in points { s += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"/>", X(x), Y(y)) }
            s += "\n"
        }
        if let smoothed { s += polyline(smoothed, "#1f77b4", 2) }
        return s + "</svg>\n"
    }
}
