// The linked HDF5 library answers its version query (what `doctor` prints).
import XCTest
import GLMIO

final class HDF5LibraryTests: XCTestCase {
    func testVersionIsReported() {
        let parts = HDF5Library.version.split(separator: ".").compactMap { Int($0) }
        XCTAssertEqual(parts.count, 3, HDF5Library.version)
        XCTAssertGreaterThanOrEqual(parts.first ?? 0, 1)
    }
}
