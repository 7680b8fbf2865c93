// `glm-train bench`: performance figures next to a reference measured in the same run.
import ArgumentParser
import Foundation
import GLMCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Performance figures, side by side with PyTorch.",
                                                    subcommands: [BenchOps.self, BenchTrain.self, BenchShape.self, BenchGenerate.self, BenchSpeculative.self])
}

/// Timing helpers for the benchmarks (not for tests).
enum Stopwatch {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Median wall time of `repeats` runs of `body` after `warmup` runs, in seconds.
    static func median(repeats: Int, warmup: Int = 2, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = now()
            body()
            times.append(now() - t0)
        }
        times.sort()
        return times[times.count / 2]
    }
}

/// A bench count option's bounds: checked before any model is built, as one line naming the option.
func checkBenchCount(_ option: String, _ value: Int, _ range: ClosedRange<Int>) throws {
    guard range.contains(value) else { throw ValidationError("\(option): expected \(range.lowerBound)...\(range.upperBound), got \(value)") }
}

/// The PyTorch side of a benchmark: which Python runs the committed comparison script, or none.
struct ComparisonOptions: ParsableArguments {
    @Option(help: "Python with torch and transformers for the comparison (default: .venv/bin/python if present).")
    var python: String?
    @Flag(help: "Skip the PyTorch comparison.")
    var noCompare = false

    /// A --python that is not an executable file is named before the bench builds its model (it was found only
    /// after our side's minutes of work).
    func validate() throws {
        if let python, !noCompare {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: python, isDirectory: &isDirectory), !isDirectory.boolValue,
                  FileManager.default.isExecutableFile(atPath: python) else {
                throw ValidationError("--python: '\(python)' is not an executable file")
            }
        }
    }

    /// The numbers `script` printed (empty with --no-compare).
    func run(script: String, arguments: [String]) throws -> [String: Double] {
        try runReporting(script: script, arguments: arguments).compactMapValues { $0 as? Double }
    }

    /// Everything `script` reported, strings (versions) included (empty with --no-compare).
    func runReporting(script: String, arguments: [String]) throws -> [String: Any] {
        if noCompare { return [:] }
        guard let py = python ?? ReferenceScript.defaultPython() else {
            throw GLMError("no Python with torch found: pass --python PATH, create .venv (make venv), or use --no-compare")
        }
        return try ReferenceScript.run(python: py, script: script, arguments: arguments)
    }
}

/// Runs a committed comparison script with the given Python and decodes its JSON output.
enum ReferenceScript {
    static func defaultPython() -> String? {
        let venv = FileManager.default.currentDirectoryPath + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    static func run(python: String, script: String, arguments: [String]) throws -> [String: Any] {
        guard FileManager.default.fileExists(atPath: script) else {
            throw GLMError("\(script): comparison script not found (run from the repository root)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { throw GLMError("\(python): cannot run (\(error.localizedDescription))") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal {
            throw GLMError("\(script) was killed by signal \(process.terminationStatus)" + (process.terminationStatus == SIGKILL ? " (the out-of-memory killer, if nobody else)" : ""))
        }
        guard process.terminationStatus == 0 else { throw GLMError("\(script) exited with status \(process.terminationStatus)") }
        let lastLine = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard let obj = try? JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any] else {
            throw GLMError("\(script): last output line is not a JSON object")
        }
        return obj
    }
}
