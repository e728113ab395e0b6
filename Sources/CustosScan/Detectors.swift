/// A generic detector for a well-known credential format: keywords (4 bytes or more,
/// ASCII case-insensitive, indexed by their first 4 bytes), a pattern checked where a
/// keyword is found, and an entropy gate on the value.
struct Detector: Sendable {
    /// A hit: the bytes to report and mask, and the bytes that are the credential itself
    /// (what the fingerprint is computed over).
    struct Hit { var range: Range<Int>; var value: Range<Int> }
    typealias Match = @Sendable (_ buf: UnsafePointer<UInt8>, _ at: Int, _ lineEnd: Int, _ end: Int) -> Hit?

    let name: String
    let keywords: [String]
    let maxLength: Int
    let multiline: Bool
    let match: Match

    static let all: [Detector] = [awsAccessKey, githubToken, githubPAT, stripeKey, slackToken, slackWebhook, privateKey, jwt, assignment]
}

@inline(__always) private func isUpperOrDigit(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) }
@inline(__always) private func isAlnum(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
}
@inline(__always) private func isB64URL(_ b: UInt8) -> Bool { isAlnum(b) || b == 0x2D || b == 0x5F }

/// True when `buf[at..<at+lit.count]` is `lit` (exact bytes), within `end`.
@inline(__always) private func has(_ buf: UnsafePointer<UInt8>, _ at: Int, _ end: Int, _ lit: StaticString) -> Bool {
    let n = lit.utf8CodeUnitCount
    guard at >= 0, at + n <= end else { return false }
    let l = lit.utf8Start
    for k in 0..<n where buf[at + k] != l[k] { return false }
    return true
}

/// Case-insensitive `has` for an all-lowercase literal.
@inline(__always) private func hasFolded(_ buf: UnsafePointer<UInt8>, _ at: Int, _ end: Int, _ lit: StaticString) -> Bool {
    let n = lit.utf8CodeUnitCount
    guard at >= 0, at + n <= end else { return false }
    let l = lit.utf8Start
    for k in 0..<n {
        var c = buf[at + k]
        if c >= 0x41 && c <= 0x5A { c |= 0x20 }
        if c != l[k] { return false }
    }
    return true
}

private func entropy(_ buf: UnsafePointer<UInt8>, _ r: Range<Int>) -> Double {
    shannonEntropy(UnsafeBufferPointer(start: buf + r.lowerBound, count: r.count))
}

@inline(__always) private func run(_ buf: UnsafePointer<UInt8>, from: Int, limit: Int, _ ok: (UInt8) -> Bool) -> Int {
    var i = from
    while i < limit && ok(buf[i]) { i += 1 }
    return i
}

/// AWS access key IDs: AKIA/ASIA/ABIA/ACCA + 16 upper-case letters or digits.
private let awsAccessKey = Detector(name: "aws-access-key-id", keywords: ["AKIA", "ASIA", "ABIA", "ACCA"].flatMap { p in
    Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8).map { p + String(UnicodeScalar($0)) } }, maxLength: 20, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "AKIA") || has(buf, at, lineEnd, "ASIA") || has(buf, at, lineEnd, "ABIA") || has(buf, at, lineEnd, "ACCA") else { return nil }
    if at > 0 && isAlnum(buf[at - 1]) { return nil }
    let e = run(buf, from: at + 4, limit: min(lineEnd, at + 21), isUpperOrDigit)
    guard e == at + 20, e == lineEnd || !isAlnum(buf[e]) else { return nil }
    guard entropy(buf, (at + 4)..<e) >= 3.0 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// GitHub tokens: ghp_/gho_/ghu_/ghs_/ghr_ + 36 letters or digits.
private let githubToken = Detector(name: "github-token", keywords: ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"].flatMap { p in
    Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8).map { p + String(UnicodeScalar($0)) } }, maxLength: 40, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "ghp_") || has(buf, at, lineEnd, "gho_") || has(buf, at, lineEnd, "ghu_")
        || has(buf, at, lineEnd, "ghs_") || has(buf, at, lineEnd, "ghr_") else { return nil }
    if at > 0 && isB64URL(buf[at - 1]) { return nil }
    let e = run(buf, from: at + 4, limit: min(lineEnd, at + 41), isAlnum)
    guard e == at + 40, e == lineEnd || !isB64URL(buf[e]) else { return nil }
    guard entropy(buf, (at + 4)..<e) >= 3.0 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// GitHub fine-grained personal access tokens: github_pat_ + 82 letters, digits and `_`.
private let githubPAT = Detector(name: "github-fine-grained-token", keywords: ["github_pat_"], maxLength: 120, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "github_pat_") else { return nil }
    let e = run(buf, from: at + 11, limit: min(lineEnd, at + 120)) { isAlnum($0) || $0 == 0x5F }
    guard e - at >= 60, e == lineEnd || !isB64URL(buf[e]) else { return nil }
    guard entropy(buf, (at + 11)..<e) >= 3.5 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// Stripe secret and restricted keys: sk_live_/rk_live_/sk_test_/rk_test_ + 24 or more letters or digits.
private let stripeKey = Detector(name: "stripe-key", keywords: ["sk_live_", "rk_live_", "sk_test_", "rk_test_"], maxLength: 140, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "sk_live_") || has(buf, at, lineEnd, "rk_live_") || has(buf, at, lineEnd, "sk_test_")
        || has(buf, at, lineEnd, "rk_test_") else { return nil }
    if at > 0 && isAlnum(buf[at - 1]) { return nil }
    let e = run(buf, from: at + 8, limit: min(lineEnd, at + 140), isAlnum)
    guard e - at >= 32, e == lineEnd || !isB64URL(buf[e]) else { return nil }
    guard entropy(buf, (at + 8)..<e) >= 3.5 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// Slack tokens: xoxb-/xoxp-/xoxa-/xoxr-/xoxs-/xoxe- + letters, digits and dashes.
private let slackToken = Detector(name: "slack-token", keywords: ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"], maxLength: 256, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "xoxb-") || has(buf, at, lineEnd, "xoxp-") || has(buf, at, lineEnd, "xoxa-")
        || has(buf, at, lineEnd, "xoxr-") || has(buf, at, lineEnd, "xoxs-") || has(buf, at, lineEnd, "xoxe-") else { return nil }
    if at > 0 && isAlnum(buf[at - 1]) { return nil }
    let e = run(buf, from: at + 5, limit: min(lineEnd, at + 256)) { isAlnum($0) || $0 == 0x2D }
    guard e - at >= 20 else { return nil }
    guard entropy(buf, (at + 5)..<e) >= 3.0 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// Slack incoming webhooks: hooks.slack.com/services/T…/B…/secret.
private let slackWebhook = Detector(name: "slack-webhook", keywords: ["hooks.slack.com/services/"], maxLength: 140, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "hooks.slack.com/services/") else { return nil }
    var i = at + 25
    guard i < lineEnd, buf[i] == UInt8(ascii: "T") else { return nil }
    i = run(buf, from: i + 1, limit: lineEnd, isUpperOrDigit)
    guard i < lineEnd, buf[i] == 0x2F, i + 1 < lineEnd, buf[i + 1] == UInt8(ascii: "B") else { return nil }
    i = run(buf, from: i + 2, limit: lineEnd, isUpperOrDigit)
    guard i < lineEnd, buf[i] == 0x2F else { return nil }
    let vs = i + 1
    let e = run(buf, from: vs, limit: min(lineEnd, vs + 64), isAlnum)
    guard e - vs >= 20, entropy(buf, vs..<e) >= 3.5 else { return nil }
    return .init(range: at..<e, value: at..<e)
}

/// PEM private key blocks (`-----BEGIN … PRIVATE KEY-----` … `-----END`), over line breaks,
/// with a body of at least 64 bytes of entropy ≥ 4.5 bits per byte (so a redacted or
/// placeholder block does not count).
private let privateKey = Detector(name: "private-key", keywords: ["-BEGIN "], maxLength: 16_448, multiline: true) { buf, at, _, end in
    let start = at - 4
    guard has(buf, start, end, "-----BEGIN ") else { return nil }
    var i = start + 11
    let labelLimit = min(end, i + 40)
    while i < labelLimit, buf[i] != UInt8(ascii: "-") { i += 1 }
    guard has(buf, i - 12, end, "PRIVATE KEY-") || has(buf, i - 11, end, "PRIVATE KEY") else { return nil }
    guard has(buf, i, end, "-----") else { return nil }
    let bodyStart = i + 5
    let limit = min(end, start + 16_384)
    var j = bodyStart
    while j < limit, !(buf[j] == 0x2D && has(buf, j, end, "-----END ")) { j += 1 }
    guard j < limit else { return nil }
    // Skip headers like Proc-Type / DEK-Info: count only base64 characters.
    guard j - bodyStart >= 64, entropy(buf, bodyStart..<j) >= 4.5 else { return nil }
    var k = j + 9
    let footLimit = min(end, k + 40)
    while k < footLimit, buf[k] != 0x2D { k += 1 }
    guard has(buf, k, end, "-----") else { return nil }
    return .init(range: start..<(k + 5), value: start..<(k + 5))
}

/// JSON Web Tokens: three base64url parts, the first two JSON objects (`eyJ`), the header
/// starting with one of the registered names alg, typ, kid, enc, cty, x5t, zip, jku, jwk.
private let jwt = Detector(name: "jwt", keywords: ["eyJhbGci", "eyJ0eXAi", "eyJraWQi", "eyJlbmMi", "eyJjdHki", "eyJ4NXQi", "eyJ6aXAi", "eyJqa3Ui", "eyJqd2si"],
                           maxLength: 8_192, multiline: false) { buf, at, lineEnd, _ in
    guard has(buf, at, lineEnd, "eyJ") else { return nil }
    if at > 0 && isB64URL(buf[at - 1]) { return nil }
    let limit = min(lineEnd, at + 8_192)
    let h = run(buf, from: at + 3, limit: limit, isB64URL)
    guard h - at >= 10, h < limit, buf[h] == 0x2E, has(buf, h + 1, limit, "eyJ") else { return nil }
    let p = run(buf, from: h + 4, limit: limit, isB64URL)
    guard p - h >= 10, p < limit, buf[p] == 0x2E else { return nil }
    let s = run(buf, from: p + 1, limit: limit, isB64URL)
    guard s - p - 1 >= 16, entropy(buf, (p + 1)..<s) >= 3.5 else { return nil }
    return .init(range: at..<s, value: at..<s)
}

/// High-entropy values assigned to names like password, secret, token, api_key:
/// `NAME = value`, `NAME: value`, `"name": "value"`, `--password value` is not covered.
private let assignment = Detector(name: "secret-assignment", keywords: ["password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "api-key", "authorization"],
                                  maxLength: 512, multiline: false) { buf, at, lineEnd, _ in
    let kwLen: Int
    if hasFolded(buf, at, lineEnd, "password") { kwLen = 8 }
    else if hasFolded(buf, at, lineEnd, "passwd") { kwLen = 6 }
    else if hasFolded(buf, at, lineEnd, "passphrase") { kwLen = 10 }
    else if hasFolded(buf, at, lineEnd, "secret") { kwLen = 6 }
    else if hasFolded(buf, at, lineEnd, "token") { kwLen = 5 }
    else if hasFolded(buf, at, lineEnd, "api_key") || hasFolded(buf, at, lineEnd, "api-key") { kwLen = 7 }
    else if hasFolded(buf, at, lineEnd, "apikey") { kwLen = 6 }
    else if hasFolded(buf, at, lineEnd, "authorization") { kwLen = 13 }
    else { return nil }
    // The rest of the name (e.g. DB_PASSWORD_PROD, secret_key), a closing quote, the operator.
    var i = run(buf, from: at + kwLen, limit: min(lineEnd, at + kwLen + 32)) { isAlnum($0) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E }
    if i < lineEnd && (buf[i] == 0x22 || buf[i] == 0x27) { i += 1 }
    i = run(buf, from: i, limit: min(lineEnd, i + 4)) { $0 == 0x20 || $0 == 0x09 }
    guard i < lineEnd else { return nil }
    if buf[i] == UInt8(ascii: ":") {
        i += 1
        if i < lineEnd && buf[i] == UInt8(ascii: "=") { i += 1 }
    } else if buf[i] == UInt8(ascii: "=") {
        i += 1
        if i < lineEnd && buf[i] == UInt8(ascii: ">") { i += 1 }
    } else { return nil }
    i = run(buf, from: i, limit: min(lineEnd, i + 4)) { $0 == 0x20 || $0 == 0x09 }
    var quote: UInt8 = 0
    if i < lineEnd && (buf[i] == 0x22 || buf[i] == 0x27) { quote = buf[i]; i += 1 }
    // `Authorization: Bearer X`, `token: Basic X`: the credential is the next word.
    if hasFolded(buf, i, lineEnd, "bearer ") { i += 7 } else if hasFolded(buf, i, lineEnd, "basic ") { i += 6 }
    else if hasFolded(buf, i, lineEnd, "token ") { i += 6 }
    let vs = i
    let e = run(buf, from: vs, limit: min(lineEnd, vs + 256)) { b in
        quote != 0 ? b != quote && b != 0x5C : !(b == 0x20 || b == 0x09 || b == 0x22 || b == 0x27 || b == 0x2C || b == 0x3B || b == 0x7D)
    }
    guard e - vs >= 8, e - vs < 256 else { return nil }
    let first = buf[vs]
    // Placeholders and references, not values: $VAR, ${{ secrets.X }}, %VAR%, <redacted>, ***, [MASKED].
    if first == 0x24 || first == 0x25 || first == 0x7B || first == 0x3C || first == 0x2A || first == 0x5B { return nil }
    var stars = 0
    for k in vs..<e where buf[k] == 0x2A { stars += 1 }
    guard stars < 3 else { return nil }
    guard entropy(buf, vs..<e) >= 3.0 else { return nil }
    return .init(range: vs..<e, value: vs..<e)
}
