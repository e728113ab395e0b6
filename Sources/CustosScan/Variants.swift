import Foundation

/// The encodings a secret is looked for in. The order is the order of preference when two
/// encodings of one secret produce the same bytes (the first name is kept).
enum Encoding: UInt8, CaseIterable {
    case raw
    case b64std0, b64std1, b64std2, b64url0, b64url1, b64url2
    case hexLower, hexUpper
    case percent, form
    case json, jsonSlash
    case shellSingle, shellDouble, shellBackslash
    case xml, html

    var name: String {
        switch self {
        case .raw: "raw"
        case .b64std0: "base64-std/offset0"
        case .b64std1: "base64-std/offset1"
        case .b64std2: "base64-std/offset2"
        case .b64url0: "base64-url/offset0"
        case .b64url1: "base64-url/offset1"
        case .b64url2: "base64-url/offset2"
        case .hexLower: "hex-lower"
        case .hexUpper: "hex-upper"
        case .percent: "percent"
        case .form: "form"
        case .json: "json-escaped"
        case .jsonSlash: "json-escaped-slash"
        case .shellSingle: "shell-single"
        case .shellDouble: "shell-double"
        case .shellBackslash: "shell-backslash"
        case .xml: "xml-escaped"
        case .html: "html-escaped"
        }
    }
}

/// One encoding of one secret: the bytes to find and, for each byte, `first << 16 | lastPlusOne`:
/// the first secret byte wholly inside a match that starts at this byte, and one past the
/// last secret byte wholly inside a match that ends with it, so a partial match can say
/// how much of the secret it covers (`lastPlusOne(end - 1) - first(start)`).
struct Variant {
    var encoding: Encoding
    var bytes: [UInt8]
    var spans: [UInt32]
}

private let b64std: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
private let b64url: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
private let hexL: [UInt8] = Array("0123456789abcdef".utf8)
private let hexU: [UInt8] = Array("0123456789ABCDEF".utf8)

@inline(__always) private func span(_ first: Int, _ lastPlusOne: Int) -> UInt32 { UInt32(first) << 16 | UInt32(lastPlusOne) }

/// The stable part of the base64 encoding of `s` when it starts `offset` bytes into a
/// longer payload: the characters that depend only on the secret's bits (no padding, no
/// character shared with the bytes before or after it).
func base64Stable(_ s: [UInt8], offset o: Int, alphabet: [UInt8]) -> ([UInt8], [UInt32]) {
    var out: [UInt8] = []
    var spans: [UInt32] = []
    let n = s.count
    let firstBit = 8 * o, endBit = 8 * (o + n)
    var c = (firstBit + 5) / 6
    while 6 * c + 6 <= endBit {
        var v = 0
        for k in 0..<6 {
            let bit = 6 * c + k
            let byte = bit / 8 - o
            let bitInByte = 7 - bit % 8
            v = v << 1 | Int((s[byte] >> UInt8(bitInByte)) & 1)
        }
        out.append(alphabet[v])
        spans.append(span((6 * c + 7) / 8 - o, (6 * c + 6) / 8 - o))
        c += 1
    }
    return (out, spans)
}

/// Per-byte escapes: `escape(b)` returns the replacement for byte `b`, or nil to keep it.
private func escaped(_ s: [UInt8], _ escape: (UInt8) -> [UInt8]?) -> ([UInt8], [UInt32]) {
    var out: [UInt8] = []
    var spans: [UInt32] = []
    out.reserveCapacity(s.count)
    for (i, b) in s.enumerated() {
        if let r = escape(b) {
            out += r
            for t in r.indices { spans.append(span(t == 0 ? i : i + 1, t == r.count - 1 ? i + 1 : i)) }
        } else {
            out.append(b); spans.append(span(i, i + 1))
        }
    }
    return (out, spans)
}

private func isUnreserved(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
        || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
}

private func pct(_ b: UInt8) -> [UInt8] { [UInt8(ascii: "%"), hexU[Int(b >> 4)], hexU[Int(b & 15)]] }

private func jsonEscape(_ b: UInt8, slash: Bool) -> [UInt8]? {
    switch b {
    case UInt8(ascii: "\""): return Array("\\\"".utf8)
    case UInt8(ascii: "\\"): return Array("\\\\".utf8)
    case UInt8(ascii: "/"): return slash ? Array("\\/".utf8) : nil
    case 0x0A: return Array("\\n".utf8)
    case 0x0D: return Array("\\r".utf8)
    case 0x09: return Array("\\t".utf8)
    case 0x08: return Array("\\b".utf8)
    case 0x0C: return Array("\\f".utf8)
    case 0..<0x20: return Array("\\u00".utf8) + [hexL[Int(b >> 4)], hexL[Int(b & 15)]]
    default: return nil
    }
}

private func isShellPlain(_ b: UInt8) -> Bool {
    isUnreserved(b) || b == UInt8(ascii: "/") || b == UInt8(ascii: "=") || b == UInt8(ascii: ":")
        || b == UInt8(ascii: ",") || b == UInt8(ascii: "@") || b == UInt8(ascii: "%") || b == UInt8(ascii: "+")
        || b >= 0x80
}

/// Every encoding of `s`, before the log view's normalisation (see `normalised`).
func allVariants(of s: [UInt8]) -> [Variant] {
    var out: [Variant] = []
    func add(_ e: Encoding, _ r: ([UInt8], [UInt32])) { out.append(Variant(encoding: e, bytes: r.0, spans: r.1)) }
    add(.raw, escaped(s) { _ in nil })
    add(.b64std0, base64Stable(s, offset: 0, alphabet: b64std))
    add(.b64std1, base64Stable(s, offset: 1, alphabet: b64std))
    add(.b64std2, base64Stable(s, offset: 2, alphabet: b64std))
    add(.b64url0, base64Stable(s, offset: 0, alphabet: b64url))
    add(.b64url1, base64Stable(s, offset: 1, alphabet: b64url))
    add(.b64url2, base64Stable(s, offset: 2, alphabet: b64url))
    var hl: [UInt8] = [], hu: [UInt8] = [], hs: [UInt32] = []
    for (i, b) in s.enumerated() {
        hl += [hexL[Int(b >> 4)], hexL[Int(b & 15)]]
        hu += [hexU[Int(b >> 4)], hexU[Int(b & 15)]]
        hs += [span(i, i), span(i + 1, i + 1)]
    }
    add(.hexLower, (hl, hs))
    add(.hexUpper, (hu, hs))
    add(.percent, escaped(s) { isUnreserved($0) ? nil : pct($0) })
    add(.form, escaped(s) { $0 == 0x20 ? [UInt8(ascii: "+")] : isUnreserved($0) ? nil : pct($0) })
    add(.json, escaped(s) { jsonEscape($0, slash: false) })
    add(.jsonSlash, escaped(s) { jsonEscape($0, slash: true) })
    add(.shellSingle, escaped(s) { $0 == UInt8(ascii: "'") ? Array("'\\''".utf8) : nil })
    add(.shellDouble, escaped(s) {
        switch $0 {
        case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "$"), UInt8(ascii: "`"): [UInt8(ascii: "\\"), $0]
        default: nil
        }
    })
    add(.shellBackslash, escaped(s) { isShellPlain($0) || $0 == 0x0A ? nil : [UInt8(ascii: "\\"), $0] })
    add(.xml, escaped(s) {
        switch $0 {
        case UInt8(ascii: "&"): Array("&amp;".utf8)
        case UInt8(ascii: "<"): Array("&lt;".utf8)
        case UInt8(ascii: ">"): Array("&gt;".utf8)
        case UInt8(ascii: "\""): Array("&quot;".utf8)
        case UInt8(ascii: "'"): Array("&apos;".utf8)
        default: nil
        }
    })
    add(.html, escaped(s) {
        switch $0 {
        case UInt8(ascii: "&"): Array("&amp;".utf8)
        case UInt8(ascii: "<"): Array("&lt;".utf8)
        case UInt8(ascii: ">"): Array("&gt;".utf8)
        case UInt8(ascii: "\""): Array("&quot;".utf8)
        case UInt8(ascii: "'"): Array("&#x27;".utf8)
        default: nil
        }
    })
    return out
}

/// The log is scanned with line breaks removed (so values split over lines match); the
/// needles drop them too.
func normalised(_ v: Variant) -> Variant {
    guard v.bytes.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return v }
    var r = Variant(encoding: v.encoding, bytes: [], spans: [])
    for (b, s) in zip(v.bytes, v.spans) where b != 0x0A && b != 0x0D { r.bytes.append(b); r.spans.append(s) }
    return r
}

/// Shannon entropy in bits per byte.
func shannonEntropy(_ p: UnsafeBufferPointer<UInt8>) -> Double {
    if p.isEmpty { return 0 }
    var counts = [Int](repeating: 0, count: 256)
    for b in p { counts[Int(b)] += 1 }
    let n = Double(p.count)
    var h = 0.0
    for c in counts where c > 0 { let q = Double(c) / n; h -= q * log2(q) }
    return h
}

func shannonEntropy(_ a: [UInt8]) -> Double { a.withUnsafeBufferPointer { shannonEntropy($0) } }

@inline(__always) func isWordByte(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
}
