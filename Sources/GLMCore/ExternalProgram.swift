// Runs an external program (a reward command, an eval command hook) with bounds: its standard input written on a
// thread of its own (so that a program that prints before reading cannot deadlock the run), at most
// `FileInput.maxProgramOutputBytes` of standard output kept, and a time limit. A program past either bound is stopped
// with its whole process group (Foundation's Process gives each child a group of its own), so that what it started —
// a shell script's `sleep`, a Python child — neither keeps running nor keeps the output pipe open.
import Foundation

public enum ExternalProgram {
    public enum Outcome {
        /// It ended by itself: its output, how it ended, and whether writing its input failed (it exited unread).
        case finished(output: Data, reason: Process.TerminationReason, status: Int32, inputUnread: Bool)
        /// Still running after the time limit: stopped.
        case timedOut
        /// Printed more than `FileInput.maxProgramOutputBytes`: stopped.
        case overflowed
        /// Could not be started (the reason).
        case cannotRun(String)
    }

    /// Runs `command` (through `/usr/bin/env`, no shell) with `input` on standard input; standard error goes to ours.
    public static func run(_ command: [String], input: Data, timeout: Double) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin; process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        signal(SIGPIPE, SIG_IGN)  // a program that exits without reading must not take the run down
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do { try process.run() } catch { return .cannotRun(error.localizedDescription) }
        final class Box: @unchecked Sendable {
            var data = Data(), overflowed = false, writeFailed = false
        }
        let box = Box(), done = DispatchSemaphore(value: 0), written = DispatchSemaphore(value: 0)
        let writer = Thread {
            do { try stdin.fileHandleForWriting.write(contentsOf: input) } catch { box.writeFailed = true }
            try? stdin.fileHandleForWriting.close()
            written.signal()
        }
        writer.start()
        let reader = Thread { (box.data, box.overflowed) = FileInput.readOutput(stdout.fileHandleForReading); done.signal() }
        reader.start()
        let group = -process.processIdentifier
        let deadline = DispatchTime.now() + timeout
        func stop() {  // SIGTERM first (a chance to clean up), then SIGKILL to whatever of the group is left
            kill(group, SIGTERM)
            _ = exited.wait(timeout: .now() + 2)
            kill(group, SIGKILL)
            _ = done.wait(timeout: .now() + 2)
            process.waitUntilExit()
            _ = written.wait(timeout: .now() + 2)
        }
        if done.wait(timeout: deadline) == .timedOut { stop(); return .timedOut }
        if box.overflowed {
            kill(group, SIGKILL)
            process.waitUntilExit()
            _ = written.wait(timeout: .now() + 2)
            return .overflowed
        }
        // Its output ended; it may still run (having closed its output): the same time limit holds.
        if exited.wait(timeout: deadline) == .timedOut { stop(); return .timedOut }
        process.waitUntilExit()
        _ = written.wait(timeout: .now() + 2)
        return .finished(output: box.data, reason: process.terminationReason, status: process.terminationStatus,
                         inputUnread: box.writeFailed)
    }
}
