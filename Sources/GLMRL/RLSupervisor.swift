// `glm-train run` on an async grpo recipe: starts the trainer and the rollout processes as children over one run
// directory, forwards SIGINT/SIGTERM to them, restarts a child that dies (at most rl.max_restarts times each,
// logged; a restarted trainer resumes from its newest checkpoint), and ends when the trainer has finished and the
// rollout processes have stopped.
import Foundation
import GLMCore
import GLMTraining

public final class RLSupervisor {
    let executable: String
    let runDirectory: String
    let workers: Int
    let maxRestarts: Int
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(executable: String, runDirectory: String, workers: Int, maxRestarts: Int) {
        self.executable = executable; self.runDirectory = runDirectory; self.workers = workers; self.maxRestarts = maxRestarts
    }

    final class Child {
        let name: String
        let arguments: [String]
        var process: Process?
        var restarts = 0
        var finished = false
        init(name: String, arguments: [String]) { self.name = name; self.arguments = arguments }
    }

    func start(_ c: Child, extra: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = c.arguments + extra
        // The children share the machine's cores instead of each taking all of them (unless the user chose).
        var env = ProcessInfo.processInfo.environment
        let share = String(max(1, ProcessInfo.processInfo.activeProcessorCount / (1 + workers)))
        if env["OPENBLAS_NUM_THREADS"] == nil { env["OPENBLAS_NUM_THREADS"] = share }
        if env["GLMTRAIN_THREADS"] == nil { env["GLMTRAIN_THREADS"] = share }
        p.environment = env
        do { try p.run() } catch { throw GLMError("cannot start \(c.name) (\(executable): \(error.localizedDescription))") }
        c.process = p
    }

    /// Runs the loop; `resume` continues the trainer from its checkpoints.
    public func run(resume: Bool) throws {
        let trainer = Child(name: "trainer", arguments: ["rl", "train", "--run", runDirectory])
        let rollouts = (0..<workers).map { Child(name: "rollout \($0)", arguments: ["rl", "rollout", "--run", runDirectory]) }
        // Signals go to the children; this process waits for them.
        final class Flag: @unchecked Sendable { var signal: Int32 = 0 }
        let stop = Flag()
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { stop.signal = sig }
            src.resume()
            sources.append(src)
        }
        defer { for s in sources { s.cancel() } }
        try start(trainer, extra: resume ? ["--resume"] : [])
        for r in rollouts { try start(r) }
        var forwarded = false
        while true {
            Thread.sleep(forTimeInterval: 0.05)
            if stop.signal != 0 && !forwarded {
                forwarded = true
                log("glm-train: signal \(stop.signal): stopping the trainer and the rollout processes")
                for c in [trainer] + rollouts { if let p = c.process, p.isRunning { kill(p.processIdentifier, stop.signal) } }
            }
            let all = [trainer] + rollouts
            if all.allSatisfy({ $0.finished || !($0.process?.isRunning ?? false) }) && forwarded { break }
            for c in all where !c.finished {
                guard let p = c.process, !p.isRunning else { continue }
                let ok = p.terminationReason == .exit && p.terminationStatus == 0
                if ok || forwarded { c.finished = true; continue }
                let how = p.terminationReason == .exit ? "status \(p.terminationStatus)" : "signal \(p.terminationStatus)"
                guard c.restarts < maxRestarts else {
                    for o in all where o !== c { if let q = o.process, q.isRunning { q.terminate(); q.waitUntilExit() } }
                    throw GLMError("the \(c.name) process exited with \(how) after \(c.restarts) restarts (rl.max_restarts \(maxRestarts)); stopped")
                }
                c.restarts += 1
                log("glm-train: the \(c.name) process exited with \(how); restarting it (\(c.restarts) of \(maxRestarts))")
                try start(c, extra: c === trainer ? ["--resume"] : [])
            }
            if trainer.finished && !forwarded {
                // The trainer is done (it marked the run done): give the rollout processes a moment, then stop them.
                let deadline = Date().addingTimeInterval(30)
                while rollouts.contains(where: { $0.process?.isRunning ?? false }) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
                for r in rollouts { if let p = r.process, p.isRunning { p.terminate(); p.waitUntilExit() } }
                break
            }
        }
        if forwarded { throw GLMError("stopped by signal \(stop.signal); resume with --resume") }
    }
}
