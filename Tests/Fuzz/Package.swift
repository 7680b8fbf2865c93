// swift-tools-version:6.0
// libFuzzer targets for every file parser of GLMTrain, one executable each (see README.md; `make fuzz`).
// Built with `-sanitize=fuzzer` (and address) passed on the command line, so this manifest has no unsafe flags.
import Foundation
import PackageDescription

// The main package is the directory two levels up; SwiftPM names a path dependency after its directory.
let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
let main = root.lastPathComponent.lowercased()

func library(_ name: String) -> Target.Dependency { .product(name: name, package: main) }

let parsers: [(target: String, dependencies: [Target.Dependency])] = [
    ("fuzz-safetensors", [library("GLMIO")]),
    ("fuzz-gguf", [library("GLMIO"), library("GLMModel")]),
    ("fuzz-checkpoint", [library("GLMIO")]),
    ("fuzz-tokenizer", [library("GLMIO"), "FuzzTokenizerSupport"]),
    ("fuzz-tiktoken", [library("GLMIO"), "FuzzTokenizerSupport"]),
    ("fuzz-config", [library("GLMIO"), library("GLMModel")]),
    ("fuzz-adapter-config", [library("GLMIO"), library("GLMModel")]),
    ("fuzz-jsonl", [library("GLMIO"), library("GLMTraining"), library("GLMRL")]),
    ("fuzz-recipe", [library("GLMTraining")]),
    ("fuzz-rollout-batch", [library("GLMRL")]),
    ("fuzz-make-seeds", [library("GLMIO")]),
]

let package = Package(
    name: "GLMTrainFuzz",
    dependencies: [.package(path: "../..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver", library("GLMCore")]),
        .target(name: "FuzzTokenizerSupport", dependencies: ["FuzzSupport", library("GLMIO")]),
    ] + parsers.map { p in
        .executableTarget(name: p.target, dependencies: ["FuzzSupport", library("GLMCore")] + p.dependencies,
                          path: "Sources/\(p.target)")
    },
    swiftLanguageModes: [.v5]
)
