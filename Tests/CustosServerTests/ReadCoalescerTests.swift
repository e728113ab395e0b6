@testable import CustosServer
import NIOCore
import NIOEmbedded
import Testing

/// ReadCoalescer: small reads are held for the delay (or until the limit) and passed on as
/// one buffer, in order; nothing is held back at the end of input, on an error or on close.
@Suite struct ReadCoalescerTests {
    static func channel(limit: Int = 100) throws -> EmbeddedChannel {
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.addHandler(ReadCoalescer(delay: .milliseconds(10), limit: limit))
        return ch
    }

    static func read(_ ch: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let b = try ch.readInbound(as: ByteBuffer.self) { out.append(String(buffer: b)) }
        return out
    }

    @Test func smallReadsArePassedOnTogetherAfterTheDelay() throws {
        let ch = try Self.channel()
        for s in ["a\n", "bc\n", "d"] { try ch.writeInbound(ByteBuffer(string: s)) }
        #expect(try Self.read(ch).isEmpty, "passed on before the delay")
        ch.embeddedEventLoop.advanceTime(by: .milliseconds(9))
        #expect(try Self.read(ch).isEmpty)
        ch.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try Self.read(ch) == ["a\nbc\nd"])
        // The next read starts a new delay.
        try ch.writeInbound(ByteBuffer(string: "e\n"))
        ch.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        #expect(try Self.read(ch) == ["e\n"])
        _ = try ch.finish()
    }

    /// While bytes are held, a read request waits for them to be passed on.
    @Test func noReadFromTheSocketWhileBytesAreHeld() throws {
        final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
            typealias OutboundIn = Never
            var reads = 0
            func read(context: ChannelHandlerContext) { reads += 1; context.read() }
        }
        let counter = ReadCounter()
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.addHandler(counter)
        try ch.pipeline.syncOperations.addHandler(ReadCoalescer(delay: .milliseconds(10), limit: 100))
        ch.read()
        #expect(counter.reads == 1)
        try ch.writeInbound(ByteBuffer(string: "x"))
        ch.read()
        ch.read()
        #expect(counter.reads == 1, "read from the socket while holding bytes")
        ch.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        #expect(try Self.read(ch) == ["x"])
        #expect(counter.reads == 2, "the held-back read was not issued once the bytes were passed on")
        _ = try ch.finish()
    }

    @Test func theLimitPassesOnAtOnce() throws {
        let ch = try Self.channel(limit: 8)
        try ch.writeInbound(ByteBuffer(string: "1234"))
        #expect(try Self.read(ch).isEmpty)
        try ch.writeInbound(ByteBuffer(string: "5678"))
        #expect(try Self.read(ch) == ["12345678"])
        // The timer of the first read does not pass on an empty buffer later.
        ch.embeddedEventLoop.advanceTime(by: .milliseconds(20))
        #expect(try Self.read(ch).isEmpty)
        _ = try ch.finish()
    }

    @Test func endOfInputErrorsAndCloseLoseNothing() throws {
        let ch = try Self.channel()
        try ch.writeInbound(ByteBuffer(string: "held"))
        ch.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(try Self.read(ch) == ["held"])

        try ch.writeInbound(ByteBuffer(string: "before error"))
        ch.pipeline.fireErrorCaught(ChannelError.ioOnClosedChannel)
        #expect(try Self.read(ch) == ["before error"])
        #expect(throws: ChannelError.self) { try ch.throwIfErrorCaught() }

        try ch.writeInbound(ByteBuffer(string: "last"))
        _ = try? ch.close().wait()
        #expect(try Self.read(ch) == ["last"])
    }
}
