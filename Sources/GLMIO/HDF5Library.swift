// Facts about the linked HDF5 library (used by `glm-train doctor` and the checkpoint writer).
import CHDF5

public enum HDF5Library {
    /// The version of the HDF5 library this process linked, e.g. "1.10.8".
    public static var version: String {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        guard H5get_libversion(&major, &minor, &release) >= 0 else { return "unknown" }
        return "\(major).\(minor).\(release)"
    }
}
