// swift-tools-version:6.0
// GLMTrain: training GLM models on CPUs. Layers and allowed imports are described in README.md.
import PackageDescription

let package = Package(
    name: "GLMTrain",
    products: [
        .executable(name: "glm-train", targets: ["GLMTrainCLI"]),
        .library(name: "GLMCore", targets: ["GLMCore"]),
        .library(name: "GLMModel", targets: ["GLMModel"]),
        .library(name: "GLMIO", targets: ["GLMIO"]),
        .library(name: "GLMTraining", targets: ["GLMTraining"]),
        .library(name: "GLMRL", targets: ["GLMRL"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .target(name: "CGLMKernels"),
        // posix_spawn for external programs (reward commands, eval hooks): ExternalProgram.swift.
        .target(name: "CSpawn"),
        // bf16 matrix products on oneDNN (Debian's libdnnl-dev): `training.precision: bf16`.
        .target(name: "CBF16GEMM", linkerSettings: [.linkedLibrary("dnnl")]),
        // Open MPI, loaded at run time (dlopen) so that the package builds and runs without it; data parallelism only.
        .target(name: "CMPIShim", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "GLMCore", dependencies: ["COpenBLAS", "CGLMKernels", "CBF16GEMM", "CSpawn"]),
        .target(name: "GLMModel", dependencies: ["GLMCore"]),
        .target(name: "GLMIO", dependencies: ["GLMModel", "GLMCore", "CHDF5"]),
        .target(name: "GLMTraining", dependencies: ["GLMIO", "GLMModel", "GLMCore", "CMPIShim", .product(name: "Yams", package: "Yams")]),
        .target(name: "GLMRL", dependencies: ["GLMTraining", "GLMIO", "GLMModel", "GLMCore"]),
        .executableTarget(name: "GLMTrainCLI", dependencies: [
            "GLMRL", "GLMTraining", "GLMIO", "GLMModel", "GLMCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TestSupport", dependencies: ["GLMIO", "GLMCore"], path: "Tests/TestSupport"),
        .testTarget(name: "GLMCoreTests", dependencies: ["GLMCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "GLMModelTests", dependencies: ["GLMModel", "GLMIO", "GLMCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "GLMTrainingTests", dependencies: ["GLMTraining", "GLMIO", "GLMModel", "GLMCore", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "GLMTrainCLITests", dependencies: ["GLMTrainCLI", "GLMIO", "GLMCore", "TestSupport"]),
        .testTarget(name: "GLMRLTests", dependencies: ["GLMRL", "GLMTraining", "GLMIO", "GLMModel", "GLMCore", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "GLMIOTests", dependencies: ["GLMIO", "GLMModel", "GLMCore", "TestSupport"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
