// RL runs as a user starts them (`glm-train run` on grpo recipes, the bundled tiny GLM): the invariants of the
// exchange (ratio exactly 1 and KL exactly 0 at step 1, train/rollout log-prob difference 0 at every on-policy
// step), a sync run killed with SIGKILL at random moments resuming to bit-identical metrics, and an async run
// whose trainer and rollout processes are killed at random moments losing and doubling no batch or prompt.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMRL
import GLMTraining
import TestSupport

final class RLRunTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = GLMTrainBinary.temporary("rl")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ name: String, mode: String, steps: Int, extra: String = "", model: String = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny",
                lora: String = "lora: {rank: 4, alpha: 8, dropout: 0}") throws -> String {
        let text = """
        task: grpo
        model: {path: \(model)}
        data: {train: \(Fixtures.repositoryRoot)/Data/rl/prompts.jsonl, shuffle: true}
        training: {steps: \(steps), seed: 3}
        optimizer: {name: adamw, lr: 2.0e-3, weight_decay: 0.0}
        schedule: {name: constant}
        \(lora)
        checkpoint: {every: 1, keep: 2}
        rl:
          mode: \(mode)
          prompts_per_batch: 2
          n_samples_per_prompt: 4
          max_new_tokens: 8
          micro_batch_size: 4
          kl_coef: 0.01
          reward: {type: sum, terms: [{weight: 1, reward: exact_match}, {weight: 0.5, reward: {type: format, pattern: ".*[0-9].*"}}]}
        \(extra)
        output_dir: \(dir)/\(name)
        """
        let path = "\(dir)/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The pids of `p`'s children (its trainer and rollout processes).
    func childPIDs(_ p: Process) -> [Int32] {
        (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/task/\(p.processIdentifier)/children", encoding: .utf8))?
            .split(separator: " ").compactMap { Int32($0) } ?? []
    }

    /// Waits for `glm-train run` to end; one still running after `seconds` has hung, and is killed with its trainer
    /// and rollout processes (children first, so that none is left behind) and fails the test.
    func waitOrKill(_ p: Process, seconds: Double, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning {
            let children = childPIDs(p)
            for c in children { kill(c, SIGKILL) }
            kill(p.processIdentifier, SIGKILL)
            XCTFail("the run did not end within \(Int(seconds)) s", file: file, line: line)
        }
        p.waitUntilExit()
    }

    /// The step records of a run (evaluation lines left out), without the timing metrics.
    func steps(_ run: String) throws -> [[String: Double]] {
        try MetricsLog.read("\(run)/metrics.jsonl").filter { $0["loss"] != nil }.map { line in
            var out: [String: Double] = [:]
            for (k, v) in line where !k.hasPrefix("perf/") && k != "tokens_per_s" { out[k] = (v as? NSNumber)?.doubleValue }
            return out
        }
    }

    func testSyncRunInvariantsAtStepOneAndOnPolicy() throws {
        let r = try GLMTrainBinary.run(["run", try recipe("sync", mode: "sync", steps: 3)])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try steps("\(dir)/sync")
        XCTAssertEqual(s.count, 3)
        XCTAssertEqual(s[0]["train/ratio_mean"], 1, "the ratio at step 1 is exactly 1")
        XCTAssertEqual(s[0]["train/kl"], 0, "the KL to the reference at step 1 is exactly 0 (B = 0)")
        for line in s {
            XCTAssertEqual(line["train/rollout_logprob_abs_diff"], 0, "trainer and rollout log-probs are bit-identical")
            XCTAssertEqual(line["perf/staleness_mean"], nil)
            XCTAssertNotNil(line["rollout/reward_mean"]); XCTAssertNotNil(line["train/entropy"])
        }
        XCTAssertGreaterThan(s[2]["train/kl"]!, 0, "the policy moved away from the reference")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/sync/adapter/adapter_config.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/sync/weights/v000003/adapter_model.safetensors"))
    }

    func testFullFineTuningReferenceIsAnF32CheckpointExactly() throws {
        // glm-tiny's weights in an f32 checkpoint, perturbed below bf16's precision: the reference of a full
        // fine-tune must be these weights, not their bf16 rounding (the KL at step 1 is then exactly 0)
        let model = "\(dir)/f32-model", tiny = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        for f in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            try FileManager.default.copyItem(atPath: "\(tiny)/\(f)", toPath: "\(model)/\(f)")
        }
        let config = try String(contentsOfFile: "\(tiny)/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"bfloat16\"", with: "\"float32\"").write(toFile: "\(model)/config.json", atomically: true, encoding: .utf8)
        let tensors = try SafetensorsFile(path: "\(tiny)/model.safetensors").allTensors()
        for t in tensors.values where t.rank == 2 { for i in 0..<t.count { t.pointer[i] *= 1 + 1e-3 * Float(i % 7 + 1) } }
        XCTAssertFalse(tensors.values.filter { $0.rank == 2 }.allSatisfy(\.isExactInBF16))
        try SafetensorsWriter.write(tensors, to: "\(model)/model.safetensors", dtype: .float32)
        let r = try GLMTrainBinary.run(["run", try recipe("full", mode: "sync", steps: 2, model: model, lora: "")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try steps("\(dir)/full")
        XCTAssertEqual(s.count, 2)
        XCTAssertEqual(s[0]["train/kl"], 0, "the KL to the reference at step 1 is exactly 0")
        XCTAssertEqual(s[0]["train/ratio_mean"], 1)
        XCTAssertGreaterThan(s[1]["train/kl"]!, 0)
    }

    func testSyncRunKilledAtRandomMomentsResumesBitIdentically() throws {
        let steps = 5
        let started = Date()
        XCTAssertEqual(try GLMTrainBinary.run(["run", try recipe("whole", mode: "sync", steps: steps)]).status, 0)
        // Kill moments scale with how long a whole run takes on this machine (30-85% of it): with fixed delays of
        // 0.3-1.5 s, a quiet machine (a whole run in ~1 s) could finish the first attempt before its kill, and a
        // slow one was only ever killed during start-up.
        let whole = Date().timeIntervalSince(started)
        let reference = try self.steps("\(dir)/whole")
        let path = try recipe("killed", mode: "sync", steps: steps)
        var gen = SeededGenerator(seed: 11)
        var kills = 0
        for attempt in 0..<6 {
            let p = try GLMTrainBinary.start(["run", path] + (attempt > 0 ? ["--resume"] : []))
            Thread.sleep(forTimeInterval: whole * (0.3 + 0.55 * Double(gen.nextUniform())))
            if p.isRunning { kill(p.processIdentifier, SIGKILL); kills += 1 }
            p.waitUntilExit()
            if p.terminationReason == .exit && p.terminationStatus == 0 { break }
        }
        let r = try GLMTrainBinary.run(["run", path, "--resume"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertGreaterThan(kills, 0, "the run finished before it could be killed")
        XCTAssertEqual(try self.steps("\(dir)/killed"), reference)
    }

    func testAsyncProcessesKilledAtRandomLoseAndDoubleNothing() throws {
        let steps = 16
        let path = try recipe("async", mode: "async", steps: steps, extra: "  max_restarts: 20")
        let log = "\(dir)/async.log"
        let p = try GLMTrainBinary.start(["run", path], stderr: log)
        var gen = SeededGenerator(seed: 5)
        var killed = 0
        while p.isRunning && killed < 4 {
            Thread.sleep(forTimeInterval: 0.15 + Double(gen.nextUniform()) * 0.35)
            let children = childPIDs(p)
            guard !children.isEmpty else { continue }
            kill(children[Int(gen.next() % UInt64(children.count))], SIGKILL)
            killed += 1
        }
        waitOrKill(p, seconds: 300)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertGreaterThanOrEqual(killed, 2, "the run ended before two processes could be killed")
        XCTAssertTrue(text.contains("restarting it"), text)
        let s = try self.steps("\(dir)/async")
        XCTAssertEqual(s.map { $0["step"]! }, (1...steps).map(Double.init))
        XCTAssertEqual(s.map { $0["rollout/batch"]! }, (0..<steps).map(Double.init), "each batch trained exactly once, in order")
        let exchange = RLRunDirectory("\(dir)/async")
        var positions: [Int] = []
        for k in 0..<steps {
            let b = try exchange.readBatch(k)
            XCTAssertEqual(b.samples.count, 8)
            positions += Set(b.samples.map(\.position)).sorted()
            for sample in b.samples { XCTAssertGreaterThanOrEqual(sample.version, k - 1, "staleness bound 1") }
        }
        XCTAssertEqual(positions.count, Set(positions).count, "no prompt position used by two batches")
        for line in s where line["rollout/version"] == line["step"].map({ $0 - 1 }) {
            XCTAssertEqual(line["train/rollout_logprob_abs_diff"], 0)
        }
    }

    func testTwoRolloutWorkersShareTheBatchesWithoutOverlap() throws {
        let steps = 8
        let r = try GLMTrainBinary.run(["run", try recipe("two", mode: "async", steps: steps, extra: "  rollout_workers: 2\n  max_staleness: 2")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try self.steps("\(dir)/two")
        XCTAssertEqual(s.map { $0["rollout/batch"]! }, (0..<steps).map(Double.init))
        let exchange = RLRunDirectory("\(dir)/two")
        var positions: [Int] = []
        for k in 0..<steps {
            let b = try exchange.readBatch(k)
            positions += Set(b.samples.map(\.position)).sorted()
            for sample in b.samples { XCTAssertGreaterThanOrEqual(sample.version, k - 2, "staleness bound 2") }
        }
        XCTAssertEqual(positions.count, Set(positions).count, "no prompt taken by two workers")
        XCTAssertEqual(r.stderr.components(separatedBy: "rollout: batch").count - 1, steps, "each batch written once")
    }

    /// The claim bookkeeping under the rollout loop: a lower unwritten batch held by a dead process of this host is
    /// found (so a worker waiting on the staleness bound for a higher batch gives that one back and takes it), one
    /// held by a live process or already written is not, and giving back a claim frees it for anyone.
    func testAnAbandonedLowerBatchIsFoundAndAClaimGivenBack() throws {
        let d = RLRunDirectory("\(dir)/claims")
        try FileManager.default.createDirectory(atPath: d.claims, withIntermediateDirectories: true)
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        let host = ProcessInfo.processInfo.hostName
        try "\(host) \(dead.processIdentifier) 1\n".write(toFile: d.claims + "/batch-000001", atomically: true, encoding: .utf8)
        try "\(host) 1 0\n".write(toFile: d.claims + "/batch-000000", atomically: true, encoding: .utf8)  // pid 1 lives
        XCTAssertTrue(try d.claimBatch(3))
        XCTAssertEqual(d.abandonedBatch(below: 3), 1, "batch 1's holder is gone")
        XCTAssertNil(d.abandonedBatch(below: 1), "batch 0's holder runs")
        XCTAssertEqual(d.abandonedBatch(below: 3, from: 2), 2, "batch 2: no claim at all, not written")
        d.releaseBatch(3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.claims + "/batch-000003"))
        XCTAssertTrue(try d.claimBatch(1), "a dead holder's claim is taken over")
        XCTAssertNil(d.abandonedBatch(below: 2), "now ours")
        // a damaged claim (empty, or not "host pid batch"; claims are never written so) holds nothing: a rollout
        // waiting on it would wait forever
        for damage in ["", "\u{0}\u{1}garbage", "host notapid 5\n"] {
            try damage.write(toFile: d.claims + "/batch-000005", atomically: true, encoding: .utf8)
            XCTAssertEqual(d.abandonedBatch(below: 6, from: 5), 5, "'\(damage)'")
            XCTAssertTrue(try d.claimBatch(5), "'\(damage)'")
            XCTAssertEqual(try String(contentsOfFile: d.claims + "/batch-000005", encoding: .utf8), "\(host) \(getpid()) 5 \(selfStart)\n")
            d.releaseBatch(5)
        }
    }

    /// This process's start (field 22 of /proc/self/stat), which claims record.
    var selfStart: String {
        let text = (try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8)) ?? ""
        return String(text[text.index(after: text.lastIndex(of: ")")!)...].split(separator: " ")[19])
    }

    /// A reused pid does not hold a claim: a live process whose start time differs from the one in the claim, or
    /// (claims without one) that started after the claim was written. A claim name that is not a regular file is
    /// an error naming it, not a batch nobody makes.
    func testAClaimOfAReusedPidIsTakenOverAndANonFileClaimIsAnError() throws {
        let d = RLRunDirectory("\(dir)/reused")
        try FileManager.default.createDirectory(atPath: d.claims, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate() }
        let pid = sleeper.processIdentifier
        // its own start: the holder runs
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let start = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")[19]
        try "\(host) \(pid) 0 \(start)\n".write(toFile: d.claims + "/batch-000000", atomically: true, encoding: .utf8)
        XCTAssertNil(d.abandonedBatch(below: 1), "the holder runs")
        XCTAssertFalse(try d.claimBatch(0))
        // another start time: the pid was reused
        try "\(host) \(pid) 0 1\n".write(toFile: d.claims + "/batch-000000", atomically: true, encoding: .utf8)
        XCTAssertEqual(d.abandonedBatch(below: 1), 0)
        XCTAssertTrue(try d.claimBatch(0), "taken over")
        // an older claim without a start time, written before that process started
        let old = d.claims + "/batch-000001"
        try "\(host) \(pid) 1\n".write(toFile: old, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: old)
        XCTAssertTrue(try d.claimBatch(1), "its process started after the claim: not the holder")
        // a directory where a claim goes
        try FileManager.default.createDirectory(atPath: d.claims + "/batch-000002", withIntermediateDirectories: true)
        XCTAssertThrowsError(try d.claimBatch(2)) { e in
            XCTAssertEqual("\(e)", "\(d.claims)/batch-000002: not a regular file; a claim is a file a rollout process writes (remove it)")
        }
        XCTAssertTrue(d.claimHolder(batch: 0)!.hasPrefix("pid \(getpid()) on \(host) since "))
    }

    /// A claim appears with its holder already in it (made whole under a private name, then hard-linked), so
    /// nobody ever reads an empty claim; what a process killed before the link leaves (its private file) claims
    /// nothing: the position is still free and batch k inherits only the positions really claimed for it.
    func testClaimsAreNeverSeenEmptyAndAKilledClaimerLeavesNothingClaimed() throws {
        let d = RLRunDirectory("\(dir)/whole-claims")
        try FileManager.default.createDirectory(atPath: d.claims, withIntermediateDirectories: true)
        try "".write(toFile: d.claims + "/.tmp-999999-killed", atomically: false, encoding: .utf8)
        XCTAssertEqual(d.firstUnclaimedPosition(), 0)
        XCTAssertEqual(try d.claimNextPosition(from: 0, batch: 4), 0)
        XCTAssertEqual(try d.claimNextPosition(from: 0, batch: 4), 1, "position 0 is taken")
        XCTAssertTrue(try d.claimBatch(4))
        XCTAssertTrue(try d.claimBatch(4), "a claim of this very process is its own")
        let host = ProcessInfo.processInfo.hostName
        for name in ["pos-00000000", "pos-00000001", "batch-000004"] {
            let text = try String(contentsOfFile: d.claims + "/" + name, encoding: .utf8)
            XCTAssertEqual(text, "\(host) \(getpid()) 4 \(selfStart)\n", name)
        }
        XCTAssertEqual(try d.inheritedPositions(batch: 4), [0, 1])
        let left = try FileManager.default.contentsOfDirectory(atPath: d.claims).filter { $0.hasPrefix(".tmp-") }
        XCTAssertEqual(left, [".tmp-999999-killed"], "no private file of a finished claim is left behind")
        XCTAssertEqual(d.firstUnclaimedPosition(), 2)
    }

    /// As on two machines sharing the directory: `rl train` and two `rl rollout` processes started by hand (no
    /// supervisor to restart anything); one worker is killed with SIGKILL once it has written a batch, and never
    /// comes back. Its claims (of this host, held by a dead process) are taken over by the other worker: every
    /// batch is written and trained exactly once, no prompt position is used twice, the staleness bound holds.
    func testAWorkerKilledForGoodLosesNothing() throws {
        let steps = 10
        let run = "\(dir)/hand"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let text = try String(contentsOfFile: try recipe("hand", mode: "async", steps: steps, extra: "  max_staleness: 2"), encoding: .utf8)
        try text.write(toFile: "\(run)/recipe.yaml", atomically: true, encoding: .utf8)
        let trainer = try GLMTrainBinary.start(["rl", "train", "--run", run], stderr: "\(dir)/train.log")
        let doomed = try GLMTrainBinary.start(["rl", "rollout", "--run", run], stderr: "\(dir)/doomed.log")
        let survivor = try GLMTrainBinary.start(["rl", "rollout", "--run", run], stderr: "\(dir)/survivor.log")
        defer { for p in [trainer, doomed, survivor] where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let exchange = RLRunDirectory(run)
        // Kill the doomed worker as soon as it has written a batch (it is then working on, and claiming, another).
        let deadline = Date().addingTimeInterval(60)
        while doomed.isRunning && Date() < deadline {
            let written = (try? String(contentsOfFile: "\(dir)/doomed.log", encoding: .utf8))?.contains("rollout: batch") ?? false
            if written { Thread.sleep(forTimeInterval: 0.2); kill(doomed.processIdentifier, SIGKILL); break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        doomed.waitUntilExit()
        XCTAssertEqual(doomed.terminationReason, .uncaughtSignal, "the worker was killed, not finished")
        // A hang (the survivor waiting on the staleness bound for a batch only the dead worker's claim held) is a
        // failure, not a stuck test.
        let end = Date().addingTimeInterval(240)
        while (trainer.isRunning || survivor.isRunning) && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
        guard !trainer.isRunning && !survivor.isRunning else {
            XCTFail("the run did not finish within 240 s: written batches \((0..<steps).filter { exchange.hasBatch($0) })")
            return
        }
        let log = (try? String(contentsOfFile: "\(dir)/train.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(trainer.terminationStatus, 0, log)
        XCTAssertEqual(survivor.terminationStatus, 0)
        let s = try self.steps(run)
        XCTAssertEqual(s.map { $0["rollout/batch"]! }, (0..<steps).map(Double.init), "each batch trained exactly once, in order")
        var positions: [Int] = []
        for k in 0..<steps {
            let b = try exchange.readBatch(k)
            XCTAssertEqual(b.samples.count, 8, "batch \(k) complete")
            positions += Set(b.samples.map(\.position)).sorted()
            for sample in b.samples { XCTAssertGreaterThanOrEqual(sample.version, k - 2, "staleness bound 2") }
        }
        XCTAssertEqual(positions.count, Set(positions).count, "no prompt position used twice")
        let byDoomed = ((try? String(contentsOfFile: "\(dir)/doomed.log", encoding: .utf8)) ?? "").components(separatedBy: "rollout: batch").count - 1
        let bySurvivor = ((try? String(contentsOfFile: "\(dir)/survivor.log", encoding: .utf8)) ?? "").components(separatedBy: "rollout: batch").count - 1
        XCTAssertGreaterThanOrEqual(byDoomed, 1)
        XCTAssertEqual(byDoomed + bySurvivor, steps, "every batch written once, the dead worker's last one by the survivor")
    }

    func testRewardCommandsThatHangFailOrLieScoreZeroWithAWarning() throws {
        let inputs = [RewardInput(prompt: "p", response: "12", answer: "12"), RewardInput(prompt: "q", response: "x", answer: "3")]
        var warnings: [String] = []
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "while read l; do echo 0.5; done"], timeout: 10).score(inputs, warnings: &warnings), [0.5, 0.5])
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "cat >/dev/null; echo '{\"reward\": 2, \"len\": 1}'; echo 1"], timeout: 10).score(inputs, warnings: &warnings), [2, 1])
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(RewardSpec.command(["sleep", "30"], timeout: 0.3).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertTrue(warnings.last!.contains("no answer within 0.3 s"), warnings.last!)
        // A script whose own child keeps the output pipe open: the whole process group is stopped at the timeout
        // (this hung the rollout before).
        for script in ["sleep 30; echo 1", "sleep 30 & wait"] {
            let start = Date()
            XCTAssertEqual(RewardSpec.command(["sh", "-c", script], timeout: 0.3).score(inputs, warnings: &warnings), [0, 0], script)
            XCTAssertTrue(warnings.last!.contains("no answer within 0.3 s"), warnings.last!)
            XCTAssertLessThan(Date().timeIntervalSince(start), 10, "\(script): the timeout did not hold")
        }
        // Output without end is cut at its bound, and rewards near the double range (whose group statistics overflow) score 0.
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "cat >/dev/null; yes 1"], timeout: 60).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertTrue(warnings.last!.contains("printed more than \(FileInput.maxProgramOutputBytes) bytes"), warnings.last!)
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "cat >/dev/null; echo 1e308; echo '{\"reward\": -1e300}'"], timeout: 10).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertTrue(warnings.last!.contains("line 2 is not a number of magnitude at most 1e15"), warnings.last!)
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "cat >/dev/null; echo 1e15; echo -3"], timeout: 10).score(inputs, warnings: &warnings), [1e15, -3])
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "exit 3"], timeout: 10).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertTrue(warnings.last!.contains("exited with status 3"), warnings.last!)
        XCTAssertEqual(RewardSpec.command(["sh", "-c", "echo 1"], timeout: 10).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertTrue(warnings.last!.contains("printed 1 lines for 2 samples"), warnings.last!)
        XCTAssertEqual(RewardSpec.command(["/nonexistent/reward"], timeout: 10).score(inputs, warnings: &warnings), [0, 0])
        XCTAssertEqual(RewardSpec.numeric.score(inputs, warnings: &warnings), [1, 0])
        // A run whose reward command crashes keeps going.
        let path = try recipe("crash", mode: "sync", steps: 2).replacingOccurrences(of: "", with: "")
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "reward: {type: sum, terms: [{weight: 1, reward: exact_match}, {weight: 0.5, reward: {type: format, pattern: \".*[0-9].*\"}}]}",
                                         with: "reward: {type: command, command: [sh, -c, \"kill -SEGV $$\"], timeout: 5}")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try GLMTrainBinary.run(["run", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: reward command sh -c kill -SEGV $$: exited with signal"), r.stderr)
    }

    func testHostileRolloutBatchesAreOneLineErrors() throws {
        let path = try recipe("hostile", mode: "async", steps: 1)
        let run = "\(dir)/hostile"
        try FileManager.default.createDirectory(atPath: "\(run)/rollouts", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path, toPath: "\(run)/recipe.yaml")
        let sample = #"{"position":0,"promptIndex":0,"group":0,"version":0,"promptTokens":[5,6],"responseTokens":[7,99999],"logProbs":[-1,-2],"reward":1,"advantage":0.5,"finishReason":"stop","response":"x"}"#
        for (text, expected) in [("{not json", "not a rollout batch"),
                                 (#"{"index":0,"samples":["# + sample + #"],"stats":{},"warnings":[]}"#, "sample 0: token id 99999 is outside the vocabulary of 2048"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: "99999", with: "8").replacingOccurrences(of: "[-1,-2]", with: "[-1]") + #"],"stats":{},"warnings":[]}"#, "1 log-probs for 2 response tokens"),
                                 (#"{"index":3,"samples":[],"stats":{},"warnings":[]}"#, "holds batch 3 with 0 samples"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: "99999", with: "8").replacingOccurrences(of: #""advantage":0.5"#, with: #""advantage":1e308"#) + #"],"stats":{},"warnings":[]}"#,
                                  "sample 0: reward 1.0, advantage 1e+308; expected finite numbers of magnitude at most 1e16"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: #""reward":1"#, with: #""reward":"high""#) + #"],"stats":{},"warnings":[]}"#,
                                  "not a rollout batch (samples[0].reward: expected a number)"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: #""group":0,"#, with: "") + #"],"stats":{},"warnings":[]}"#,
                                  "not a rollout batch (samples[0].group: missing)"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: "99999", with: "2147483648") + #"],"stats":{},"warnings":[]}"#,
                                  "not a rollout batch (not valid JSON or a number out of range"),
                                 (#"{"index":0,"samples":["# + sample.replacingOccurrences(of: "99999", with: "8") + #"],"stats":{},"warnings":[]}"#,
                                  "1 samples; the recipe's rl.prompts_per_batch × rl.n_samples_per_prompt is 8")] {
            try text.write(toFile: "\(run)/rollouts/batch-000000.json", atomically: true, encoding: .utf8)
            let r = try GLMTrainBinary.run(["rl", "train", "--run", run])
            XCTAssertEqual(r.status, 1, r.stderr)
            let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
            XCTAssertEqual(errors.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected) && r.stderr.contains("batch-000000.json"), r.stderr)
            try? FileManager.default.removeItem(atPath: "\(run)/checkpoints")
        }
    }

    func testRecipeMistakesAreOneLineErrors() throws {
        let bad = try recipe("bad", mode: "sync", steps: 1, extra: "  eps_clip: 0.2")
        var r = try GLMTrainBinary.run(["run", bad])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("rl.eps_clip: unknown key"), r.stderr)
        let dropout = try String(contentsOfFile: try recipe("dropout", mode: "sync", steps: 1), encoding: .utf8)
            .replacingOccurrences(of: "dropout: 0}", with: "dropout: 0.1}")
        try dropout.write(toFile: "\(dir)/dropout.yaml", atomically: true, encoding: .utf8)
        r = try GLMTrainBinary.run(["run", "\(dir)/dropout.yaml"])
        XCTAssertTrue(r.stderr.contains("lora.dropout 0.1: RL needs the same policy"), r.stderr)
        let kl = try recipe("kl", mode: "sync", steps: 1, extra: "  kl_in_reward: true\n  kl_coef: 0")
        r = try GLMTrainBinary.run(["run", kl])
        XCTAssertTrue(r.stderr.contains("duplicate key") || r.stderr.contains("kl_in_reward: true needs kl_coef above 0"), r.stderr)
        // A prompt without the answer the reward checks is refused, not scored 0 (a command reward needs none).
        try "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"2+2=\"}\n".write(toFile: "\(dir)/no-answer.jsonl", atomically: true, encoding: .utf8)
        let noAnswer = try String(contentsOfFile: try recipe("no-answer", mode: "sync", steps: 1), encoding: .utf8)
            .replacingOccurrences(of: "\(Fixtures.repositoryRoot)/Data/rl/prompts.jsonl", with: "\(dir)/no-answer.jsonl")
        try noAnswer.write(toFile: "\(dir)/no-answer.yaml", atomically: true, encoding: .utf8)
        r = try GLMTrainBinary.run(["run", "\(dir)/no-answer.yaml"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/no-answer.jsonl:2: no \"answer\", which the recipe's reward checks"), r.stderr)
        XCTAssertFalse(RewardSpec.command(["true"], timeout: 1).checksAnswer)
        XCTAssertTrue(RewardSpec.weighted([(1, .format("x")), (1, .numeric)]).checksAnswer)
    }

    func testOneSamplePerPromptWarnsThatRewardsTrainNothing() throws {
        let one = try String(contentsOfFile: try recipe("one", mode: "sync", steps: 1), encoding: .utf8)
            .replacingOccurrences(of: "n_samples_per_prompt: 4", with: "n_samples_per_prompt: 1")
        try one.write(toFile: "\(dir)/one.yaml", atomically: true, encoding: .utf8)
        let r = try GLMTrainBinary.run(["run", "\(dir)/one.yaml"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(dir)/one.yaml: rl.n_samples_per_prompt 1: each group is one sample"), r.stderr)
    }

    /// A format pattern that backtracks without end on a reply scores 0 with a warning instead of stalling rollouts.
    func testAFormatRewardThatBacktracksWithoutEndScoresZero() {
        var warnings: [String] = []
        let inputs = [RewardInput(prompt: "p", response: "the answer is 42, the answer is 42!", answer: nil),
                      RewardInput(prompt: "p", response: "42", answer: nil)]
        let start = Date()
        XCTAssertEqual(RewardSpec.format("(.*.*.*.*)*X").score(inputs, warnings: &warnings), [0, 0])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings[0].hasPrefix("format reward: the pattern took more than"), warnings[0])
        warnings = []
        XCTAssertEqual(RewardSpec.format(".*[0-9].*").score(inputs, warnings: &warnings), [1, 1])
        XCTAssertTrue(warnings.isEmpty)
    }

    /// A version directory without its LATEST pointer (a trainer killed between the two): the trainer's start sets
    /// the pointer instead of skipping the version, so the rollouts can begin. Before, both sides waited forever.
    func testAVersionPublishedWithoutItsPointerIsPointedAtOnStart() throws {
        let d = RLRunDirectory("\(dir)/pointer")
        var published: [Int] = []
        try d.ensurePublished(version: 0) { published.append(0); try d.publish(version: 0, adapter: nil, tensors: ["w": Tensor([1, 2], shape: [2])]) }
        XCTAssertEqual(published, [0])
        XCTAssertEqual(try d.latestVersion(), 0)
        // Version 1's directory is complete but LATEST still names 0.
        try AtomicDirectory.publish(d.versionPath(1)) { try SafetensorsWriter.write(["w": Tensor([3, 4], shape: [2])], to: "\($0)/model.safetensors") }
        XCTAssertEqual(try d.latestVersion(), 0)
        try d.ensurePublished(version: 1) { published.append(1) }
        XCTAssertEqual(published, [0], "a complete directory is not written again")
        XCTAssertEqual(try d.latestVersion(), 1)
        try d.ensurePublished(version: 0) { published.append(0) }
        XCTAssertEqual(try d.latestVersion(), 1, "LATEST never goes back")
        try FileManager.default.removeItem(atPath: d.weights + "/LATEST")
        try d.ensurePublished(version: 1) { published.append(1) }
        XCTAssertEqual(try d.latestVersion(), 1)
        XCTAssertEqual(published, [0])

        // The whole run: version 0 on disk from an earlier run of the same recipe, no LATEST.
        XCTAssertEqual(try GLMTrainBinary.run(["run", try recipe("first", mode: "async", steps: 1)]).status, 0)
        let run = "\(dir)/second"
        try FileManager.default.createDirectory(atPath: run + "/weights", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(dir)/first/weights/v000000", toPath: run + "/weights/v000000")
        let p = try GLMTrainBinary.start(["run", try recipe("second", mode: "async", steps: 2), "--resume"], stderr: "\(dir)/second.log")
        waitOrKill(p, seconds: 60)
        let log = (try? String(contentsOfFile: "\(dir)/second.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationReason, .exit, "the run hung: \(log)")
        XCTAssertEqual(p.terminationStatus, 0, log)
        XCTAssertEqual(try steps(run).map { $0["step"]! }, [1, 2])
    }
}
