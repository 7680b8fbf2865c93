// Reading an untrusted checkpoint in a child process first. libhdf5 (1.10.8 in Debian) can be crashed by a crafted
// file whose HDF5 metadata checksums are valid (examples in Tests/Fuzz/Known/checkpoint): the faults are inside the
// library, so no check of GLMTrain's can come before them. A program turns this on once, at start: from then on
// every `TrainingCheckpoint.read` first reads the same file, the same way, in a child process, and only a child that
// finished cleanly lets the parent open the file. A child killed by a signal becomes a one-line error naming the
// file; a child's own error is passed on as it is.
import Foundation
import Synchronization
import GLMCore

public enum CheckpointIsolation {
    /// How to start the child: `executable` run with `arguments + [path]`; it must call `childMain(path:)`.
    public struct Child: Sendable {
        public var executable: String
        public var arguments: [String]
        public init(executable: String, arguments: [String]) {
            self.executable = executable
            self.arguments = arguments
        }
    }

    private static let child = Mutex<Child?>(nil)

    /// Turns the isolation on (or off with nil) for the rest of the process.
    public static func enable(_ value: Child?) { child.withLock { $0 = value } }

    public static var current: Child? { child.withLock { $0 } }

    /// The child's side: reads `path` in this process (isolation off), prints a failure as one `error:` line on
    /// stderr, and returns the exit status (0: the file reads and verifies).
    public static func childMain(path: String) -> Int32 {
        enable(nil)
        do {
            _ = try TrainingCheckpoint.read(from: path)
            return 0
        } catch let error as GLMError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
        }
        return 1
    }

    /// Reads `path` in a child when isolation is on; throws what the child reported, or that it crashed.
    static func check(_ path: String) throws {
        guard let child = current else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: child.executable)
        process.arguments = child.arguments + [path]
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a crash ends the child at once, without a backtrace
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw GLMError("\(path): cannot start the process that checks the checkpoint (\(child.executable): \(error.localizedDescription))")
        }
        let bytes = errors.fileHandleForReading.readDataToEndOfFile().prefix(65_536)
        process.waitUntilExit()
        let status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            let name = strsignal(status).map { String(cString: $0) } ?? "signal \(status)"
            throw GLMError("\(path): not a readable checkpoint: the HDF5 library crashed reading it (\(name)); its HDF5 metadata is malformed or crafted")
        }
        guard status == 0 else {
            let text = String(decoding: bytes, as: UTF8.self)
            let line = text.split(separator: "\n").last { $0.hasPrefix("error: ") }
            throw GLMError(line.map { String($0.dropFirst("error: ".count)) }
                           ?? "\(path): the process that checks the checkpoint failed (exit status \(status))")
        }
    }
}
