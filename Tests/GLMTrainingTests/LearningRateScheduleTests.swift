// Schedules against transformers' formulas (values worked out by hand).
import XCTest
import GLMTraining

final class LearningRateScheduleTests: XCTestCase {
    func testWarmupThenDecay() throws {
        let cosine = try LearningRateSchedule(kind: .cosine, baseRate: 1e-3, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(cosine.rate(at: 0), 0)
        XCTAssertEqual(cosine.rate(at: 5), 5e-4, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 10), 1e-3, accuracy: 1e-12)
        XCTAssertEqual(cosine.rate(at: 60), 5e-4, accuracy: 1e-12)      // half-way: cos(π/2) = 0
        XCTAssertEqual(cosine.rate(at: 110), 0, accuracy: 1e-12)
        let linear = try LearningRateSchedule(kind: .linear, baseRate: 2, warmupSteps: 0, totalSteps: 4)
        XCTAssertEqual((0...4).map { linear.rate(at: $0) }, [2, 1.5, 1, 0.5, 0])
        let constant = try LearningRateSchedule(kind: .constant, baseRate: 3, warmupSteps: 3, totalSteps: 10)
        XCTAssertEqual((0...4).map { constant.rate(at: $0) }, [0, 1, 2, 3, 3])
    }

    func testInvalidValuesAreRejected() {
        XCTAssertThrowsError(try LearningRateSchedule(kind: .cosine, baseRate: -1, warmupSteps: 0, totalSteps: 10))
        XCTAssertThrowsError(try LearningRateSchedule(kind: .cosine, baseRate: 1, warmupSteps: -2, totalSteps: 10))
        XCTAssertThrowsError(try LearningRateSchedule(kind: .cosine, baseRate: 1, warmupSteps: 0, totalSteps: 0))
    }
}
