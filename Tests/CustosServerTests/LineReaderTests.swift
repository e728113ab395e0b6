@testable import CustosServer
import Foundation
import Testing

@Suite struct LineReaderTests {
    /// Lines as a reader reports them (too-long ones by their flag only: their content is
    /// not specified).
    static func lines(_ path: String, maxLine: Int, chunk: Int, readAhead: Bool, buffers: Int = 3) throws -> [String] {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var out: [String] = []
        let body: (UnsafeRawBufferPointer, Bool) throws -> Void = { line, long in
            out.append(long ? "<too long>" : String(decoding: line, as: UTF8.self))
        }
        if readAhead {
            try LineReader.forEachLineReadAhead(fd: fd, maxLine: maxLine, chunk: chunk, buffers: buffers, body)
        } else {
            try LineReader.forEachLine(fd: fd, maxLine: maxLine, chunk: chunk, body)
        }
        return out
    }

    /// Random files (CRLF, empty lines, lines just under, at and over the limit, no final
    /// newline, over-long last lines) split the same way by both readers, at many chunk sizes.
    @Test func readAheadSplitsLikeTheReader() throws {
        let dir = TempDir()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<60 {
            let maxLine = Int.random(in: 20...300, using: &rng)
            var text = ""
            for _ in 0..<Int.random(in: 0...400, using: &rng) {
                let n: Int
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: n = 0
                case 1: n = maxLine + Int.random(in: -1...1, using: &rng)
                case 2: n = maxLine * Int.random(in: 2...5, using: &rng)
                default: n = Int.random(in: 1...maxLine, using: &rng)
                }
                text += String(repeating: "a", count: max(0, n)) + (Bool.random(using: &rng) ? "\n" : "\r\n")
            }
            if Bool.random(using: &rng) { text += String(repeating: "z", count: Int.random(in: 1...(3 * maxLine), using: &rng)) }
            let path = dir.write("r\(round).txt", text)
            let chunk = Int.random(in: 1...700, using: &rng)
            let expected = try Self.lines(path, maxLine: maxLine, chunk: chunk, readAhead: false)
            for buffers in [2, 3, 5] {
                #expect(try Self.lines(path, maxLine: maxLine, chunk: chunk, readAhead: true, buffers: buffers) == expected,
                        "round \(round), maxLine \(maxLine), chunk \(chunk), \(buffers) buffers")
            }
        }
    }

    /// A failing body stops the reader (no hang, nothing read after).
    @Test func aFailingBodyStopsTheReadAhead() throws {
        let dir = TempDir()
        let path = dir.write("many.txt", (0..<100_000).map { "line \($0)" }.joined(separator: "\n"))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        struct Stop: Error {}
        var seen = 0
        #expect(throws: Stop.self) {
            try LineReader.forEachLineReadAhead(fd: fd, maxLine: 100, chunk: 256) { _, _ in
                seen += 1
                if seen == 5000 { throw Stop() }
            }
        }
        #expect(seen == 5000)
    }
}
