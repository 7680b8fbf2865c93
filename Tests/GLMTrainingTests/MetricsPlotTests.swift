// SVG plots of metrics whose values sit within a few ULPs of each other, or at the edges of a double: every file is
// written, with a bounded number of ticks (the tick loop once added a step below half an ULP forever).
import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import GLMCore
import GLMTraining

final class MetricsPlotTests: XCTestCase {
    func plot(_ lines: [String]) throws -> [String: String] {
        let dir = NSTemporaryDirectory() + "metrics-plot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/metrics.jsonl", atomically: true, encoding: .utf8)
        var out: [String: String] = [:]
        for file in try MetricsPlot.writeAll(metrics: "\(dir)/metrics.jsonl", to: "\(dir)/plots") {
            out[(file as NSString).lastPathComponent] = try String(contentsOfFile: file, encoding: .utf8)
        }
        return out
    }

    func testAtMostMaxPlotsAreWrittenAndBadLinesAreCounted() throws {
        let dir = NSTemporaryDirectory() + "metrics-plot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = (0..<(MetricsPlot.maxPlots + 5)).map { "\"m\($0)\": 1" }.joined(separator: ", ")
        try "{\"step\": 1, \(names)}\nnot json\n{\"step\": 2, \"m0\": 2}\n{\"step\": 3, \"m".write(toFile: "\(dir)/metrics.jsonl", atomically: true, encoding: .utf8)
        var warnings: [String] = []
        let files = try MetricsPlot.writeAll(metrics: "\(dir)/metrics.jsonl", to: "\(dir)/plots") { warnings.append($0) }
        XCTAssertEqual(files.count, MetricsPlot.maxPlots)
        XCTAssertEqual(warnings, ["\(dir)/metrics.jsonl: 1 line is not a JSON object; skipped",
                                  "\(dir)/metrics.jsonl: \(MetricsPlot.maxPlots + 5) metric names; plotting the first \(MetricsPlot.maxPlots) in order"],
                       "the torn last line is not counted")
    }

    func testValuesAFewULPsApartArePlottedWithFewTicks() throws {
        for (a, b) in [("5000.0", "5000.000000000001"), ("4096.0", "4096.000000000001"), ("65536.0", "65536.00000000001"),
                       ("1e+22", "1.0000000000000004e+22"), ("-8192.0", "-8192.000000000002")] {
            let svgs = try plot(["{\"step\":0,\"loss\":\(a)}", "{\"step\":1,\"loss\":\(b)}"])
            let svg = try XCTUnwrap(svgs["loss.svg"], a)
            XCTAssertTrue(svg.hasSuffix("</svg>\n"), a)
            XCTAssertTrue(svg.contains("<polyline") || svg.contains("<circle"), a)
            XCTAssertLessThan(svg.components(separatedBy: "<text").count, 40, "\(a): too many labels")
            XCTAssertFalse(svg.contains("nan"), a)
        }
    }

    func testStepsAndValuesAtTheEdgesOfADouble() throws {
        let svgs = try plot(["{\"step\":1e300,\"loss\":1e308}", "{\"step\":1.0000000000000002e300,\"loss\":-1e308}",
                             "{\"step\":9007199254740993,\"lr\":1e-320}", "{\"step\":9007199254740994,\"lr\":2e-320}"])
        XCTAssertEqual(Set(svgs.keys), ["loss.svg", "lr.svg"])
        for (name, svg) in svgs {
            XCTAssertTrue(svg.hasSuffix("</svg>\n"), name)
            XCTAssertLessThan(svg.components(separatedBy: "<text").count, 40, "\(name): too many labels")
        }
    }

    /// Metric names from an eval hook program: NUL, newlines, "..", "/" and a 300-character name each get a file of
    /// their own with a plain name in the plot directory, and the SVG stays well-formed XML.
    func testHostileMetricNamesGetPlainDistinctFileNames() throws {
        let long = String(repeating: "m", count: 300)
        // "a_b-e72db919054dbbbc" is the name "a~b" is given (FNV-1a of "a~b"): the two still get two files.
        let names = ["a~b", "a_b-e72db919054dbbbc", "eval/ext/a\\u0000b", "eval/ext/a\\nb", "eval/ext/..", "..", "eval/ext/a_b", "eval_ext_a/b", "eval/ext/\(long)",
                     "eval/ext/<&>", "eval/ext/é"]
        let svgs = try plot(names.enumerated().map { i, n in "{\"step\":\(i),\"\(n)\":\(i)}" })
        XCTAssertEqual(svgs.count, names.count, "\(svgs.keys.sorted())")
        for (file, svg) in svgs {
            XCTAssertTrue(file.hasSuffix(".svg") && !file.hasPrefix("."), file)
            XCTAssertLessThan(file.utf8.count, 160, file)
            XCTAssertTrue(file.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 0x20 && $0 != "/" }, file)
            XCTAssertFalse(svg.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "\(file): a control character in the SVG")
            XCTAssertNotNil(try? XMLDocument(xmlString: svg), "\(file) is not well-formed XML")
        }
    }
}
