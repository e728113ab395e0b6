import Foundation

extension MaxMindDB {
    /// Reads the whole file at `path` and opens it (`init(bytes:)`).
    public init(contentsOf path: String) throws(GeoIPError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw GeoIPError(.io, "cannot read MaxMind DB file \(path)")
        }
        try self.init(bytes: [UInt8](data))
    }
}
