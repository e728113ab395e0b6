import NIOCore
import NIOPosix

/// Why an SMTP delivery failed: the stage and reply code (`SMTP 550 after RCPT TO`), or the
/// network error class. Never the server's reply text or the message.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    /// 4xx replies, network errors and timeouts may succeed later; 5xx replies will not.
    public var isTransient: Bool
    public var replyCode: Int?

    public init(_ description: String, transient: Bool, replyCode: Int? = nil) {
        self.description = description; self.isTransient = transient; self.replyCode = replyCode
    }
}

/// A minimal SMTP client (RFC 5321) over plain TCP, for a local relay: EHLO (HELO when the
/// server refuses EHLO), MAIL FROM, RCPT TO, DATA with dot-stuffing, QUIT. Every reply
/// code is checked. The whole exchange, connect included, must finish within `timeout`.
///
/// Not done yet: STARTTLS and AUTH. Point it at a relay on the same host or network
/// (port 25 or 2525) that forwards mail on; the message travels in clear text to it.
public struct SMTPClient: Sendable {
    public var host: String
    public var port: Int
    /// The name given in EHLO.
    public var heloName: String
    public var timeout: Duration

    public init(host: String, port: Int, heloName: String = "localhost", timeout: Duration = .seconds(10)) {
        self.host = host; self.port = port; self.heloName = Self.sanitizedHelo(heloName); self.timeout = timeout
    }

    /// Longest reply line and number of lines of one reply accepted from a server.
    static let maxLine = 4096, maxReplyLines = 100

    /// Sends one message (RFC 5322 text with CRLF line ends) to one recipient.
    public func send(from: String, to: String, message: [UInt8]) async throws(SMTPError) {
        guard Self.isSafeAddress(from) else { throw SMTPError("sender address is not usable in SMTP", transient: false) }
        guard Self.isSafeAddress(to) else { throw SMTPError("recipient address is not usable in SMTP", transient: false) }
        let data = Self.dotStuffed(message)
        let timeout = self.timeout
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount.nanoseconds(max(1, Self.nanos(timeout))))
                .connect(host: host, port: port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                    }
                }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.converse(channel, from: from, to: to, data: data) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw SMTPError("timed out after \(NetworkErrorClass.seconds(timeout))", transient: true)
                }
                defer {
                    group.cancelAll()
                    channel.channel.close(promise: nil)
                }
                try await group.next()
            }
        } catch let e as SMTPError {
            throw e
        } catch {
            throw SMTPError(NetworkErrorClass.describe(error, timeout: timeout), transient: true)
        }
    }

    func converse(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, from: String, to: String, data: [UInt8]) async throws {
        try await channel.executeThenClose { inbound, outbound in
            var reader = ReplyReader(iterator: inbound.makeAsyncIterator())
            func command(_ line: String) async throws {
                try await outbound.write(ByteBuffer(bytes: Array((line + "\r\n").utf8)))
            }
            func expect(_ stage: String, _ accepted: Set<Int>) async throws {
                let code = try await reader.reply()
                guard accepted.contains(code) else {
                    throw SMTPError("SMTP \(code) after \(stage)", transient: (400..<500).contains(code), replyCode: code)
                }
            }
            try await expect("connect", [220])
            try await command("EHLO \(heloName)")
            let ehlo = try await reader.reply()
            if ehlo != 250 {
                guard (500..<600).contains(ehlo) else {
                    throw SMTPError("SMTP \(ehlo) after EHLO", transient: (400..<500).contains(ehlo), replyCode: ehlo)
                }
                try await command("HELO \(heloName)")
                try await expect("HELO", [250])
            }
            try await command("MAIL FROM:<\(from)>")
            try await expect("MAIL FROM", [250])
            try await command("RCPT TO:<\(to)>")
            try await expect("RCPT TO", [250, 251])
            try await command("DATA")
            try await expect("DATA", [354])
            try await outbound.write(ByteBuffer(bytes: data))
            try await expect("end of data", [250])
            // Delivered. QUIT is a courtesy: its reply (or none) changes nothing.
            try? await command("QUIT")
            _ = try? await reader.reply()
        }
    }

    /// Reads CRLF-terminated reply lines and joins multi-line replies (`250-...` then `250 ...`).
    struct ReplyReader {
        var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        var buffer: [UInt8] = []

        mutating func line() async throws -> [UInt8] {
            while true {
                if let i = buffer.firstIndex(of: 0x0A) {
                    var l = Array(buffer[..<i])
                    buffer.removeSubrange(...i)
                    if l.last == 0x0D { l.removeLast() }
                    return l
                }
                guard buffer.count <= SMTPClient.maxLine else {
                    throw SMTPError("SMTP reply line longer than \(SMTPClient.maxLine) bytes", transient: false)
                }
                guard var chunk = try await iterator.next() else {
                    throw SMTPError("connection closed by the SMTP server", transient: true)
                }
                buffer += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
        }

        /// The reply's code (checked the same on every line of a multi-line reply).
        mutating func reply() async throws -> Int {
            var first: Int?
            for _ in 0..<SMTPClient.maxReplyLines {
                let l = try await line()
                guard l.count >= 3, l[0..<3].allSatisfy({ (0x30...0x39).contains($0) }),
                      l.count == 3 || l[3] == UInt8(ascii: " ") || l[3] == UInt8(ascii: "-") else {
                    throw SMTPError("malformed SMTP reply", transient: false)
                }
                let code = Int(l[0] - 0x30) * 100 + Int(l[1] - 0x30) * 10 + Int(l[2] - 0x30)
                guard (200..<600).contains(code), first == nil || first == code else {
                    throw SMTPError("malformed SMTP reply", transient: false)
                }
                first = code
                if l.count == 3 || l[3] == UInt8(ascii: " ") { return code }
            }
            throw SMTPError("SMTP reply of more than \(SMTPClient.maxReplyLines) lines", transient: false)
        }
    }

    /// CRLF line ends throughout, a `.` doubled at the start of every line (RFC 5321
    /// §4.5.2), then the `.` line that ends DATA.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 64)
        var atLineStart = true
        var i = 0
        while i < message.count {
            let b = message[i]
            if b == 0x0D || b == 0x0A {
                out += [0x0D, 0x0A]
                if b == 0x0D && i + 1 < message.count && message[i + 1] == 0x0A { i += 1 }
                atLineStart = true
            } else {
                if atLineStart && b == UInt8(ascii: ".") { out.append(b) }
                out.append(b)
                atLineStart = false
            }
            i += 1
        }
        if !atLineStart { out += [0x0D, 0x0A] }
        out += Array(".\r\n".utf8)
        return out
    }

    /// An address that cannot break out of `<...>` or inject a command: printable ASCII or
    /// UTF-8 without spaces, angle brackets or controls, with one `@`.
    static func isSafeAddress(_ a: String) -> Bool {
        guard !a.isEmpty, a.utf8.count <= 254, a.filter({ $0 == "@" }).count == 1 else { return false }
        return a.unicodeScalars.allSatisfy { u in
            u.value > 0x20 && u.value != 0x7F && !(0x80..<0xA0).contains(u.value) && u != "<" && u != ">"
                && u != "\u{2028}" && u != "\u{2029}"
        }
    }

    static func sanitizedHelo(_ name: String) -> String {
        let ok = name.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "-") }
        let s = String(String.UnicodeScalarView(ok))
        return s.isEmpty ? "localhost" : String(s.prefix(253))
    }

    static func nanos(_ d: Duration) -> Int64 {
        let c = d.components
        return c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    }
}
