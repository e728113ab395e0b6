import CustosCore

/// Writes a ZIP archive (PKWARE APPNOTE 6.3) of stored, uncompressed files: enough for an
/// evidence pack that any unzip opens, without zlib. Names are UTF-8 (flag bit 11), files are
/// marked read-only for Unix unzip, and sizes stay below 4 GiB (no ZIP64).
public enum ZipWriter {
    public struct TooLarge: Error, CustomStringConvertible {
        public var description: String
    }

    public static func stored(_ files: [(name: String, bytes: [UInt8])], modified: EventTime) throws -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        let (time, date) = dosTime(modified)
        for (name, bytes) in files {
            let nameBytes = Array(name.utf8)
            guard bytes.count < 0xFFFF_FFFF, nameBytes.count < 0xFFFF, out.count < 0xFFFF_FFFF - bytes.count - 30 - nameBytes.count else {
                throw TooLarge(description: "the pack is too large for a ZIP without ZIP64 (\(name))")
            }
            let crc = CRC32.checksum(bytes)
            let offset = UInt32(out.count)
            // Local file header.
            out.le32(0x0403_4B50); out.le16(20); out.le16(0x0800); out.le16(0); out.le16(time); out.le16(date)
            out.le32(crc); out.le32(UInt32(bytes.count)); out.le32(UInt32(bytes.count)); out.le16(UInt16(nameBytes.count)); out.le16(0)
            out.append(contentsOf: nameBytes)
            out.append(contentsOf: bytes)
            // Its central directory record: made by Unix (3), 0444 regular file.
            central.le32(0x0201_4B50); central.le16(0x0314); central.le16(20); central.le16(0x0800); central.le16(0)
            central.le16(time); central.le16(date); central.le32(crc); central.le32(UInt32(bytes.count)); central.le32(UInt32(bytes.count))
            central.le16(UInt16(nameBytes.count)); central.le16(0); central.le16(0); central.le16(0); central.le16(0)
            central.le32(UInt32(0o100444) << 16); central.le32(offset)
            central.append(contentsOf: nameBytes)
        }
        guard files.count < 0xFFFF, out.count + central.count < 0xFFFF_FFFF else {
            throw TooLarge(description: "the pack is too large for a ZIP without ZIP64")
        }
        let cdOffset = UInt32(out.count)
        out.append(contentsOf: central)
        out.le32(0x0605_4B50); out.le16(0); out.le16(0); out.le16(UInt16(files.count)); out.le16(UInt16(files.count))
        out.le32(UInt32(central.count)); out.le32(cdOffset); out.le16(0)
        return out
    }

    /// MS-DOS time and date (UTC; two-second resolution; 1980 at the earliest).
    static func dosTime(_ t: EventTime) -> (UInt16, UInt16) {
        let s = max(t.seconds, 315_532_800)
        let days = s / 86_400, secs = s % 86_400
        let (y, m, d) = EventTime.civil(fromDays: days)
        let time = UInt16((secs / 3600) << 11 | ((secs % 3600) / 60) << 5 | (secs % 60) / 2)
        let date = UInt16(min(127, Int(y) - 1980) << 9 | m << 5 | d)
        return (time, date)
    }
}

extension Array where Element == UInt8 {
    mutating func le16(_ v: UInt16) { append(UInt8(v & 0xFF)); append(UInt8(v >> 8)) }
    mutating func le32(_ v: UInt32) { for k in 0..<4 { append(UInt8((v >> (8 * UInt32(k))) & 0xFF)) } }
}
