import CustosCore
import CustosStore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Malformed and hostile HTTP clients: each is dropped or refused with a clear answer, and
/// the server goes on serving everyone else.
@Suite struct ServeAbuseTests {
    /// A raw loopback TCP connection. Its blocking calls run on a thread of their own, never on
    /// one of Swift's cooperative threads: there are only as many of those as cores (two here),
    /// and the in-process server under test needs one to answer. A CI run (stop 16) failed when
    /// this test sat in `recv` on one of them while other tests ran in parallel: the server's
    /// answer did not come within the receive timeout and the test read nothing.
    final class RawConnection: @unchecked Sendable {
        let fd: Int32
        init(port: Int) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            try #require(ok, "connect to 127.0.0.1:\(port)")
            var tv = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        deinit { close(fd) }
        /// All of `bytes`, unless the peer stops taking them.
        func send(_ bytes: [UInt8]) async {
            await offPool { [fd] in
                var done = 0
                while done < bytes.count {
                    let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL)) }
                    if n > 0 { done += n } else if n < 0, errno == EINTR { continue } else { return }
                }
            }
        }
        /// Everything until the peer closes (`closed`), or until 30 s pass without a byte (not
        /// `closed`); `seconds` is how long that took on the reading thread (not when the test
        /// got to run again, which in a full parallel run can be much later).
        func readToClose() async -> (bytes: [UInt8], closed: Bool, seconds: Double) {
            await offPool { [fd] in
                let started = Date()
                var out: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n > 0 { out += buf[0..<n]; continue }
                    if n < 0, errno == EINTR { continue }   // with SO_RCVTIMEO set, even SA_RESTART does not restart recv
                    return (out, n == 0 || errno == ECONNRESET, Date().timeIntervalSince(started))
                }
            }
        }
        private func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
            await withCheckedContinuation { c in Thread { c.resume(returning: body()) }.start() }
        }
    }

    /// A chunked body (no Content-Length) is counted as it arrives: past `max_body_bytes` it is
    /// refused with 413 and nothing of it is stored; one within the limit is ingested.
    @Test func chunkedBodiesAreBoundedToo() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir) { $0.limits.maxBodyBytes = 4096 }
        try await buildApplication(state: state).test(.ahc(.http)) { client in
            let port = try #require(client.port)
            func chunked(_ body: [UInt8]) -> [UInt8] {
                var out = Array("POST /v1/ingest?format=vault HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(t.ingest)\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".utf8)
                var i = 0
                while i < body.count {
                    let n = min(1000, body.count - i)
                    out += Array((String(n, radix: 16) + "\r\n").utf8) + body[i..<(i + n)] + Array("\r\n".utf8)
                    i += n
                }
                return out + Array("0\r\n\r\n".utf8)
            }
            let big = try RawConnection(port: port)
            await big.send(chunked(Array(vaultPair(id: "c1", path: "secret/data/a", name: "alice").utf8) + Array(repeating: 0x20, count: 5000)))
            let r1 = String(decoding: await big.readToClose().bytes, as: UTF8.self)
            #expect(r1.hasPrefix("HTTP/1.1 413"), "\(r1.prefix(200))")
            #expect(r1.contains("4096"))
            let small = try RawConnection(port: port)
            await small.send(chunked(Array(vaultPair(id: "c2", path: "secret/data/b", name: "bob").utf8)))
            let r2 = String(decoding: await small.readToClose().bytes, as: UTF8.self)
            #expect(r2.hasPrefix("HTTP/1.1 200"), "\(r2.prefix(200))")
            #expect(r2.contains("\"accepted\":1"))
        }
        #expect(state.store.trail.size == 1)
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" } == ["bob"])
    }

    @Test func stalledAndMalformedClientsAreDroppedAndTheServerGoesOn() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir) { $0.limits.idleTimeout = 1 }
        // AsyncHTTPClient (not the live client's single connection): the 1 s idle timeout
        // closes idle connections, and it reconnects.
        try await buildApplication(state: state).test(.ahc(.http)) { client in
            let port = try #require(client.port)
            // A client that starts a request and stalls: closed after the idle timeout.
            let slow = try RawConnection(port: port)
            await slow.send(Array("POST /v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Le".utf8))
            let r1 = await slow.readToClose()
            #expect(r1.closed, "a stalled client was not disconnected")
            #expect(r1.seconds < 8, "disconnected after \(r1.seconds) s")
            // A declared body that never fully arrives: dropped too, nothing ingested.
            let partial = try RawConnection(port: port)
            await partial.send(Array("POST /v1/ingest?format=vault HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(t.ingest)\r\nContent-Length: 100000\r\n\r\n{\"time\":".utf8))
            #expect(await partial.readToClose().closed)
            // Not HTTP at all: a 400 or a closed connection.
            let junk = try RawConnection(port: port)
            await junk.send([0x16, 0x03, 0x01, 0x00, 0xFF] + Array(repeating: 0xC3, count: 300) + Array("\r\n\r\n".utf8))
            let r3 = await junk.readToClose()
            #expect(r3.closed)
            #expect(r3.bytes.isEmpty || String(decoding: r3.bytes.prefix(12), as: UTF8.self).hasPrefix("HTTP/1.1 400"))
            // A header section past the limit (64 KiB): refused, connection dropped.
            let huge = try RawConnection(port: port)
            await huge.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 70_000))\r\n\r\n".utf8))
            let r4 = await huge.readToClose()
            #expect(r4.closed)
            #expect(!String(decoding: r4.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            // Invalid UTF-8 and a truncated record in a body: per-record rejections, the rest accepted.
            var body = Array(vaultPair(id: "u1", path: "secret/data/a", name: "alice").utf8)
            body += [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D, 0x0A]                  // {"\xFF\xFE":1}
            body += Array(#"{"time":"2026-01-02T03:04:05Z","type":"response","request":{"id":"#.utf8) + [0x0A]
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: [.authorization: "Bearer \(t.ingest)"],
                                     body: ByteBuffer(bytes: body)) { r in
                #expect(r.status == .ok)
                let o = try #require(ServeTests.json(r.body) as? [String: Any])
                #expect(o["accepted"] as? Int == 1, "\(o)")
                #expect(o["rejected"] as? Int == 2, "\(o)")
            }
            // Everyone else is still served.
            try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
        }
        #expect(state.store.trail.size == 1)
    }
}
