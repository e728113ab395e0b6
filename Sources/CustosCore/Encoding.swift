/// Strict standard base64 (RFC 4648 §4, padded) without Foundation.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let reverse: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let b = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((b.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= b.count {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)]); out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rem = b.count - i
        if rem == 1 {
            let n = UInt32(b[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        } else if rem == 2 {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)]); out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded standard base64; nil for any other input (wrong length, bad
    /// characters, non-zero padding bits), so that every value has one encoding.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let s = Array(text.utf8)
        guard s.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(s.count / 4 * 3)
        var i = 0
        while i < s.count {
            let last = i + 4 == s.count
            let c0 = reverse[Int(s[i])], c1 = reverse[Int(s[i + 1])]
            guard c0 >= 0, c1 >= 0 else { return nil }
            let p2 = s[i + 2] == UInt8(ascii: "="), p3 = s[i + 3] == UInt8(ascii: "=")
            if p2 || p3 {
                guard last, p3 else { return nil }
                if p2 {
                    guard c1 & 0x0f == 0 else { return nil }
                    out.append(UInt8(c0) << 2 | UInt8(c1) >> 4)
                } else {
                    let c2 = reverse[Int(s[i + 2])]
                    guard c2 >= 0, c2 & 0x03 == 0 else { return nil }
                    out.append(UInt8(c0) << 2 | UInt8(c1) >> 4)
                    out.append(UInt8(c1 & 0x0f) << 4 | UInt8(c2) >> 2)
                }
            } else {
                let c2 = reverse[Int(s[i + 2])], c3 = reverse[Int(s[i + 3])]
                guard c2 >= 0, c3 >= 0 else { return nil }
                out.append(UInt8(c0) << 2 | UInt8(c1) >> 4)
                out.append(UInt8(c1 & 0x0f) << 4 | UInt8(c2) >> 2)
                out.append(UInt8(c2 & 0x03) << 6 | UInt8(c3))
            }
            i += 4
        }
        return out
    }
}

public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
    /// Lower- or upper-case hex of even length; nil otherwise.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let s = Array(text.utf8)
        guard s.count % 2 == 0 else { return nil }
        func v(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(s.count / 2)
        var i = 0
        while i < s.count {
            guard let h = v(s[i]), let l = v(s[i + 1]) else { return nil }
            out.append(h << 4 | l); i += 2
        }
        return out
    }
}
