// Runs an external program (a reward command, an eval command hook) with bounds, in one poll loop: its standard input
// written as it reads it (a program that prints before reading cannot deadlock the run), at most
// `FileInput.maxProgramOutputBytes` of standard output kept, and a time limit that holds whatever the program leaves
// behind. It is started by posix_spawn (CSpawn) in a process group of its own with every other descriptor closed:
// Foundation's Process hands its exit-watch socket to the child and to all it starts, so a daemon left behind kept
// Process from ever reporting the exit. A program past a bound is stopped with its whole group (what it started: a
// shell script's `sleep`, a Python child); once it has exited, output still held open by something it left running
// is waited for one second more, then that group is stopped and the output taken as it is. (A descendant that starts
// a session of its own is out of reach of the group; it no longer delays the return.)
import CSpawn
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

    /// How long output may stay open after the program exited (something it started holds it).
    static let outputGrace = 1.0

    /// Runs `command` (found on PATH, no shell) with `input` on standard input; standard error goes to ours.
    public static func run(_ command: [String], input: Data, timeout: Double) -> Outcome {
        guard !command.isEmpty else { return .cannotRun("no command") }
        signal(SIGPIPE, SIG_IGN)  // a program that exits without reading must not take the run down
        var pid: pid_t = 0, inFd: Int32 = -1, outFd: Int32 = -1
        // Through /usr/bin/env, as Process ran it: PATH lookup, a script without "#!" run by /bin/sh, leading
        // NAME=value arguments set in its environment; env execs the program, which keeps env's pid and group.
        var cArgs: [UnsafeMutablePointer<CChar>?] = (["/usr/bin/env"] + command).map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let rc = cArgs.withUnsafeMutableBufferPointer { glms_spawn($0.baseAddress!, &pid, &inFd, &outFd) }
        guard rc == 0 else { return .cannotRun(String(cString: strerror(rc))) }
        // Monotonic time: a clock step (NTP, a resumed VM) neither stops a healthy program nor extends the limit.
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        let start = now()
        var output = Data(), written = 0, inputUnread = false
        var exitStatus: Int32? = nil, exitedAt: Double? = nil
        defer {
            if inFd >= 0 { close(inFd) }
            if outFd >= 0 { close(outFd) }
        }
        if input.isEmpty { close(inFd); inFd = -1 }
        func reap(block: Bool) {
            guard exitStatus == nil else { return }
            var status: Int32 = 0
            if waitpid(pid, &status, block ? 0 : WNOHANG) == pid { exitStatus = status; exitedAt = now() }
        }
        /// SIGTERM to the group, up to 2 s for the program to go, then SIGKILL to whatever of the group is left.
        func stop() {
            kill(-pid, SIGTERM)
            let until = now() + 2
            while exitStatus == nil && now() < until { reap(block: false); if exitStatus == nil { usleep(10_000) } }
            kill(-pid, SIGKILL)
            reap(block: true)
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            // The limit applies while the program runs; once it has exited only the output grace remains.
            if exitStatus == nil && now() - start > timeout { stop(); return .timedOut }
            var fds: [pollfd] = []
            if outFd >= 0 { fds.append(pollfd(fd: outFd, events: Int16(POLLIN), revents: 0)) }
            if inFd >= 0 { fds.append(pollfd(fd: inFd, events: Int16(POLLOUT), revents: 0)) }
            if !fds.isEmpty { _ = poll(&fds, nfds_t(fds.count), 10) } else { usleep(10_000) }
            // Output: read what is there; end of file closes it.
            if outFd >= 0 {
                while true {
                    let n = read(outFd, &buffer, buffer.count)
                    if n > 0 {
                        guard n <= FileInput.maxProgramOutputBytes - output.count else {
                            kill(-pid, SIGKILL); reap(block: true)
                            return .overflowed
                        }
                        output.append(buffer, count: n)
                        continue
                    }
                    if n == 0 || (errno != EAGAIN && errno != EINTR) { close(outFd); outFd = -1 }
                    break
                }
            }
            // Input: write what the pipe takes; a program that closed its input gets no more.
            if inFd >= 0 {
                let n = input.withUnsafeBytes { raw in write(inFd, raw.baseAddress! + written, raw.count - written) }
                if n > 0 { written += n } else if n < 0 && errno != EAGAIN && errno != EINTR { inputUnread = true; close(inFd); inFd = -1 }
                if written == input.count, inFd >= 0 { close(inFd); inFd = -1 }
            }
            reap(block: false)
            guard let status = exitStatus else { continue }
            if outFd >= 0 {
                // Exited, output still open: something it started holds it.
                guard now() - exitedAt! > outputGrace else { continue }
                kill(-pid, SIGKILL)
            }
            if written < input.count { inputUnread = true }
            let signalled = status & 0x7f != 0
            return .finished(output: output, reason: signalled ? .uncaughtSignal : .exit,
                             status: signalled ? status & 0x7f : (status >> 8) & 0xff, inputUnread: inputUnread)
        }
    }
}
