// Bench options that cannot be meant are one-line errors before any model is built (a hostile audit found
// `bench train --steps 0` trapping after 34 s of work and `--python /nonexistent` named only after minutes).
import XCTest
import Foundation
import TestSupport

final class BenchOptionTests: XCTestCase {
    func assertRefused(_ arguments: [String], _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let start = Date()
        let r = try GLMTrainBinary.run(["bench"] + arguments)
        XCTAssertEqual(r.status, 1, "\(arguments): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error:") && r.stderr.contains(expected), "\(arguments): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stdout.isEmpty, r.stdout, file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(start), 30, "refused before building a model", file: file, line: line)
    }

    func testCountsOutsideTheirBoundsAreRefused() throws {
        try assertRefused(["train", "--no-compare", "--steps", "0"], "--steps: expected 1...1000, got 0")
        try assertRefused(["train", "--lora", "--no-compare", "--steps=-1"], "--steps: expected 1...1000, got -1")
        try assertRefused(["train", "--dpo", "--no-compare", "--steps", "1000000"], "--steps: expected 1...1000")
        try assertRefused(["shape", "--torch", "none", "--steps", "0"], "--steps: expected 1...100, got 0")
        try assertRefused(["generate", "--no-compare", "--repeats", "0"], "--repeats: expected 1...1000, got 0")
        try assertRefused(["generate", "--no-compare", "--new-tokens", "0"], "--new-tokens: expected 1...1024, got 0")
        try assertRefused(["ops", "--no-compare", "--repeats", "0"], "--repeats: expected 1...10000, got 0")
        try assertRefused(["speculative", "--count", "0"], "--count: expected 1...1024, got 0")
        try assertRefused(["speculative", "--new-tokens", "1"], "--new-tokens: expected 2...4096, got 1")
    }

    func testOptionsThatContradictEachOtherAreRefused() throws {
        try assertRefused(["train", "--lora", "--dpo", "--no-compare"], "--lora and --dpo: choose one")
        try assertRefused(["train", "--no-compare", "--torch", "autocast"], "--torch: sets the PyTorch side, which --no-compare leaves out")
    }

    func testAPythonThatCannotRunIsNamedFirst() throws {
        try assertRefused(["train", "--python", "/nonexistent/python"], "--python: '/nonexistent/python' is not an executable file")
        try assertRefused(["shape", "--python", NSTemporaryDirectory()], "is not an executable file")
    }
}
