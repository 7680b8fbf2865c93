// Token sampling: greedy, reproducibility by seed, top-k/top-p truncation, and the sampled frequencies.
import XCTest
import Foundation
import GLMCore
import GLMModel

final class TokenSamplerTests: XCTestCase {
    let logits: [Float] = [1.0, 3.0, 0.5, 2.5, -1.0]

    func draw(_ p: SamplingParameters, seed: UInt64, count: Int) -> [Int32] {
        var s = TokenSampler(parameters: p, seed: seed)
        return logits.withUnsafeBufferPointer { b in (0..<count).map { _ in s.sample(b.baseAddress!, vocab: b.count).id } }
    }

    func testGreedyPicksTheArgmaxWithItsLogProbability() {
        var s = TokenSampler(parameters: .greedy, seed: 0)
        let t = logits.withUnsafeBufferPointer { s.sample($0.baseAddress!, vocab: $0.count) }
        XCTAssertEqual(t.id, 1)
        let z = logits.map { Foundation.exp(Double($0)) }.reduce(0, +)
        XCTAssertEqual(Double(t.logProb), 3 - Foundation.log(z), accuracy: 1e-6)
    }

    func testSameSeedSameTokensDifferentSeedDifferentTokens() {
        let p = SamplingParameters(temperature: 1.5)
        XCTAssertEqual(draw(p, seed: 42, count: 50), draw(p, seed: 42, count: 50))
        XCTAssertNotEqual(draw(p, seed: 42, count: 50), draw(p, seed: 43, count: 50))
    }

    func testTopKAndTopPTruncate() {
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topK: 1), seed: 1, count: 100)), [1])
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 5, topK: 2), seed: 1, count: 400)), [1, 3])
        // Probabilities at T=1: token 1 ≈ 0.50, token 3 ≈ 0.30; top-p 0.6 keeps exactly {1, 3}.
        XCTAssertEqual(Set(draw(SamplingParameters(temperature: 1, topP: 0.6), seed: 2, count: 400)), [1, 3])
    }

    func testFrequenciesFollowTheTemperatureScaledSoftmax() {
        let n = 20_000, t: Float = 0.8
        let counts = draw(SamplingParameters(temperature: t), seed: 9, count: n).reduce(into: [Int32: Int]()) { $0[$1, default: 0] += 1 }
        let e = logits.map { Foundation.exp(Double($0 / t)) }
        let z = e.reduce(0, +)
        for (j, ej) in e.enumerated() {
            let expected = ej / z, observed = Double(counts[Int32(j), default: 0]) / Double(n)
            // 5 standard deviations of a binomial proportion.
            XCTAssertEqual(observed, expected, accuracy: 5 * (expected * (1 - expected) / Double(n)).squareRoot() + 1e-4, "token \(j)")
        }
    }

    func testInvalidParametersAreRejected() {
        XCTAssertThrowsError(try SamplingParameters(temperature: -1).validate())
        XCTAssertThrowsError(try SamplingParameters(topP: 0).validate())
        XCTAssertThrowsError(try SamplingParameters(topK: -3).validate())
        XCTAssertNoThrow(try SamplingParameters(temperature: 0.7, topP: 0.9, topK: 40).validate())
    }
}
