// Runs the built `glm-train` executable as a user would, for the CLI tests.
import Foundation
import XCTest

public enum GLMTrainBinary {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public init(status: Int32, stdout: String, stderr: String) { self.status = status; self.stdout = stdout; self.stderr = stderr }
    }

    /// The release binary built next to the tests (or in .build/release).
    public static func path() throws -> String {
        // Next to the test bundle (macOS: the bundle's directory; Linux: the .xctest is the executable itself and
        // bundleURL its directory), so that a custom --scratch-path tests its own binary.
        let candidates = [Bundle.main.bundleURL.appendingPathComponent("glm-train").path,
                          Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("glm-train").path,
                          "\(Fixtures.repositoryRoot)/.build/release/glm-train"]
        let exe = candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: exe), "glm-train not built")
        return exe
    }

    /// Starts `glm-train args` without waiting; standard output and error go to the given files (or nowhere).
    public static func start(_ args: [String], stdout: String? = nil, stderr: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try path())
        p.arguments = args
        p.standardOutput = stdout.map { FileManager.default.createFile(atPath: $0, contents: nil); return FileHandle(forWritingAtPath: $0)! } ?? FileHandle.nullDevice
        p.standardError = stderr.map { FileManager.default.createFile(atPath: $0, contents: nil); return FileHandle(forWritingAtPath: $0)! } ?? FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs `glm-train args` to the end and captures its output; `environment` adds to (or replaces) variables.
    /// With `addressSpaceKiB`, under that `ulimit -v` (through /bin/sh).
    public static func run(_ args: [String], environment: [String: String] = [:], addressSpaceKiB: Int? = nil) throws -> Result {
        let p = Process()
        if let kib = addressSpaceKiB {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "ulimit -v \(kib) && exec \"$0\" \"$@\"", try path()] + args
        } else {
            p.executableURL = URL(fileURLWithPath: try path())
            p.arguments = args
        }
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        // Read both pipes concurrently so a full stderr pipe cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let e = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { e.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e.data, as: UTF8.self))
    }

    /// A fresh temporary path.
    public static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "glmtrain-cli-\(UUID().uuidString)-\(name)"
    }
}
