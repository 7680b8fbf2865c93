// Writes the HDF5 seeds of fuzz-checkpoint (Tests/Fuzz/Seeds/checkpoint/) with TrainingCheckpoint.write:
// small checkpoints of the shapes training writes. Run by `make fuzz-seeds`; not a fuzz target.
import Foundation
import FuzzSupport
import GLMCore
import GLMIO

@_cdecl("fuzz_make_seeds_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    let dir = "\(Fuzz.repository)/Tests/Fuzz/Seeds/checkpoint"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    func tensor(_ shape: [Int], _ start: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.pointer[i] = start + Float(i) * 0.25 }
        return t
    }
    let cases: [(String, TrainingCheckpoint)] = [
        ("empty.h5", TrainingCheckpoint()),
        ("lora-adamw.h5", TrainingCheckpoint(
            tensors: ["lora.0.q_proj.a": tensor([2, 3], 1), "lora.0.q_proj.b": tensor([3, 2], -1)],
            optimizerState: ["exp_avg/lora.0.q_proj.a": tensor([2, 3], 0), "exp_avg_sq/lora.0.q_proj.a": tensor([2, 3], 0.5)],
            step: 7, scalars: ["lr": 0.001, "loss_scale": .infinity], rngState: [1, 2, 3, 0xFFFF_FFFF_FFFF_FFFF],
            dataCursor: ["epoch": 1, "index": 12], metadata: ["recipe": "task: sft\n", "model_type": "glm", "/odd.%name": ""])),
        ("scalar-tensor.h5", TrainingCheckpoint(tensors: ["s": tensor([], 3), "e": tensor([0, 2], 0)], step: 1, rngState: [5])),
    ]
    for (name, checkpoint) in cases {
        do { try checkpoint.write(to: "\(dir)/\(name)") } catch { print("error: \(error)"); return 1 }
        _ = try! TrainingCheckpoint.read(from: "\(dir)/\(name)")
        print("wrote \(dir)/\(name)")
    }
    return 0
}

/// Not fuzzed; defined because every executable of this package links libFuzzer's driver.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt { 0 }
