/// Splits a syslog-over-TCP byte stream into frames (RFC 6587), deciding per frame:
/// a frame that starts with a digit is octet-counted (`MSG-LEN SP SYSLOG-MSG`, RFC 6587
/// 3.4.1 / RFC 5425), anything else is non-transparent (ends at LF or NUL, a CR before the
/// LF is dropped; RFC 6587 3.4.2). LF, CR and NUL bytes between frames are skipped.
///
/// Memory stays bounded by `maxMessage`: a longer frame is reported once as `.tooLarge` and
/// its bytes are dropped as they come (an octet-counted one is skipped by its count, so the
/// stream stays in step). A malformed octet count (leading zero, more than 9 digits, not
/// followed by a space) leaves no way to find the next frame: `feed` throws and the caller
/// closes the connection.
struct SyslogFramer {
    enum Frame: Equatable {
        case message([UInt8])
        /// A frame longer than `maxMessage` (its length when known), dropped.
        case tooLarge(Int?)
    }

    struct Failure: Error, Equatable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    enum State: Equatable {
        case between
        /// Octet count digits read so far.
        case count(Int, digits: Int)
        case octets(remaining: Int)
        case skipOctets(remaining: Int)
        case line
        case skipLine
    }

    let maxMessage: Int
    private(set) var state = State.between
    private var partial: [UInt8] = []

    init(maxMessage: Int) { self.maxMessage = maxMessage }

    /// True while a frame has started but not ended (used for the slow-client timeout).
    var inFrame: Bool { state != .between }
    /// Frames started so far (tells the current frame from an earlier one).
    private(set) var framesStarted = 0

    mutating func feed(_ raw: UnsafeRawBufferPointer, _ emit: (Frame) -> Void) throws(Failure) {
        var i = 0
        let n = raw.count
        while i < n {
            switch state {
            case .between:
                let b = raw[i]
                if b == 0x0A || b == 0x0D || b == 0x00 { i += 1; continue }
                if b >= 0x30 && b <= 0x39 {
                    guard b != 0x30 else { throw Failure(reason: "octet count starts with 0") }
                    framesStarted += 1
                    state = .count(Int(b - 0x30), digits: 1)
                    i += 1
                } else {
                    framesStarted += 1
                    state = .line
                }
            case .count(let v, let digits):
                let b = raw[i]
                i += 1
                if b >= 0x30 && b <= 0x39 {
                    guard digits < 9 else { throw Failure(reason: "octet count longer than 9 digits") }
                    state = .count(v * 10 + Int(b - 0x30), digits: digits + 1)
                } else if b == 0x20 {
                    if v > maxMessage {
                        emit(.tooLarge(v))
                        state = .skipOctets(remaining: v)
                    } else {
                        partial.removeAll(keepingCapacity: true)
                        state = .octets(remaining: v)
                    }
                } else {
                    throw Failure(reason: "octet count not followed by a space")
                }
            case .octets(let remaining):
                let take = min(remaining, n - i)
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[i..<(i + take)]))
                i += take
                if take == remaining {
                    emit(.message(partial))
                    partial.removeAll(keepingCapacity: partial.capacity <= 65_536)
                    state = .between
                } else {
                    state = .octets(remaining: remaining - take)
                }
            case .skipOctets(let remaining):
                let take = min(remaining, n - i)
                i += take
                state = take == remaining ? .between : .skipOctets(remaining: remaining - take)
            case .line:
                var j = i
                while j < n, raw[j] != 0x0A, raw[j] != 0x00 { j += 1 }
                if partial.count + (j - i) > maxMessage {
                    partial.removeAll(keepingCapacity: false)
                    emit(.tooLarge(nil))
                    if j < n { state = .between; i = j + 1 } else { state = .skipLine; i = n }
                    continue
                }
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[i..<j]))
                if j < n {
                    if partial.last == 0x0D { partial.removeLast() }
                    emit(.message(partial))
                    partial.removeAll(keepingCapacity: partial.capacity <= 65_536)
                    state = .between
                    i = j + 1
                } else {
                    i = n
                }
            case .skipLine:
                var j = i
                while j < n, raw[j] != 0x0A, raw[j] != 0x00 { j += 1 }
                if j < n { state = .between; i = j + 1 } else { i = n }
            }
        }
    }

    /// The end of the stream: a non-transparent frame without its trailer is a message (the
    /// sender closed after it); a partial octet-counted frame or count is truncated.
    mutating func finish(_ emit: (Frame) -> Void) -> Failure? {
        defer { state = .between; partial = [] }
        switch state {
        case .between, .skipLine, .skipOctets: return nil
        case .line:
            if partial.last == 0x0D { partial.removeLast() }
            if !partial.isEmpty { emit(.message(partial)) }
            return nil
        case .count:
            return Failure(reason: "the connection ended inside an octet count")
        case .octets(let remaining):
            return Failure(reason: "the connection ended \(remaining) bytes before the end of an octet-counted frame")
        }
    }
}
