// `custos witness serve` and `custos serve` on loopback: the server submits its checkpoints
// to the witness, serves the cosignature with its checkpoint, and `custos verify --witness`
// passes with the witness's key (over HTTP and on the data directory) and fails with another.
// Needs only the built binary (no OpenBao).

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("custos witness end to end")
struct WitnessIntegrationTests {
    @Test("serve submits checkpoints to a witness; verify --witness passes with its key and fails with another")
    func witnessCosignsAndVerifyChecksQuorum() async throws {
        let custos = try locateCustos()
        let dir = try TempDir("witness")
        defer { dir.remove() }
        let data = dir.path("data")

        // Keys: the log's, the witness's, and a witness that never runs.
        let logVKey = try await run(custos, ["keygen", "--data", data, "--origin", "custos.test/witnessed"], timeout: 60)
            .expect(0, "keygen").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await run(custos, ["witness", "keygen", "--name", "witness.test/w1", "--out", dir.path("w1")], timeout: 60).expect(0, "witness keygen")
        try await run(custos, ["witness", "keygen", "--name", "witness.test/w2", "--out", dir.path("w2")], timeout: 60).expect(0, "witness keygen 2")
        let keyMode = try FileManager.default.attributesOfItem(atPath: dir.path("w1/witness.key"))[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        let w1 = try String(contentsOfFile: dir.path("w1/witness.vkey"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try await run(custos, ["witness", "keygen", "--name", "witness.test/w1", "--out", dir.path("w1")], timeout: 60)
            .expect(2, "witness keygen refuses to replace a key")

        // The witness.
        let wPort = try ServeIntegrationTests.freePort()
        let wConfig = dir.path("witness.yaml")
        try """
            listen: 127.0.0.1:\(wPort)
            state: wstate
            key: w1/witness.key
            logs:
              - origin: custos.test/witnessed
                vkey: \(logVKey)
            """.write(toFile: wConfig, atomically: true, encoding: .utf8)
        let witness = try ServeProcess(custos: custos, arguments: ["witness", "serve", "--config", wConfig], port: wPort, logs: dir, tag: "witness")
        defer { witness.kill9() }
        try await witness.waitUp()

        // The server, with the witness configured.
        let port = try ServeIntegrationTests.freePort()
        let config = dir.path("serve.yaml")
        try """
            data: \(data)
            listen: 127.0.0.1:\(port)
            witnesses:
              - url: http://127.0.0.1:\(wPort)
                vkey: \(w1)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let server = try ServeProcess(custos: custos, config: config, port: port, logs: dir, tag: "witnessed")
        defer { server.kill9() }
        try await server.waitUp()
        let ingest = try server.token("ingest"), auditor = try server.token("auditor")

        // Two ingests, so that the second submission needs a consistency proof.
        var size = 0
        for round in 0..<2 {
            let body = (0..<50).map { vaultResponse(id: "w\(round)-\($0)", path: "secret/data/w/\(round)-\($0)") }.joined()
            let (code, resp) = try await ServeIntegrationTests.http("POST", server.base + "/v1/ingest?format=vault&instance=w",
                                                                    token: ingest, body: Data(body.utf8))
            #expect(code == 200, "\(String(decoding: resp, as: UTF8.self))")
            size += 50
            // The served checkpoint carries the witness's cosignature once it has been collected.
            var cosigned = false
            for _ in 0..<200 where !cosigned {
                let (c, note) = try await ServeIntegrationTests.http("GET", server.base + "/trail/checkpoint", token: auditor)
                let text = String(decoding: note, as: UTF8.self)
                if c == 200, text.contains("\n\(size)\n"), text.contains("\n— witness.test/w1 ") { cosigned = true } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(cosigned, "no cosignature for size \(size) within 20 s: \((try? String(contentsOfFile: server.stdoutPath, encoding: .utf8)) ?? "")")
        }

        // The witness's monitoring endpoint agrees.
        let hash = try await run(URL(fileURLWithPath: "/bin/sh"), ["-c", "printf %s custos.test/witnessed | sha256sum | cut -d' ' -f1"], timeout: 30)
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (mc, mnote) = try await ServeIntegrationTests.http("GET", "http://127.0.0.1:\(wPort)/\(hash)/checkpoint", token: nil)
        #expect(mc == 200)
        #expect(String(decoding: mnote, as: UTF8.self).contains("\n\(size)\n"))

        // verify --url with the witness's key passes; with the other key it fails, naming it.
        let tokenFile = dir.path("auditor.token")
        try auditor.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let vkeyFile = data + "/keys/trail.vkey"
        let ok = try await run(custos, ["verify", "--url", server.base, "--token-file", tokenFile, "--vkey", vkeyFile,
                                        "--witness", dir.path("w1/witness.vkey")], timeout: 120)
        try ok.expect(0, "verify --url --witness w1")
        #expect(ok.stdout.contains("cosigned by witness witness.test/w1"), "\(ok.stdout)")
        let wrong = try await run(custos, ["verify", "--url", server.base, "--token-file", tokenFile, "--vkey", vkeyFile,
                                           "--witness", dir.path("w2/witness.vkey")], timeout: 120)
        try wrong.expect(1, "verify --url --witness w2")
        #expect(wrong.stdout.contains("witness.test/w2"), "\(wrong.stdout)")
        // A quorum of one out of both passes; both required fails.
        try await run(custos, ["verify", "--url", server.base, "--token-file", tokenFile, "--vkey", vkeyFile,
                               "--witness", dir.path("w1/witness.vkey"), "--witness", dir.path("w2/witness.vkey"), "--quorum", "1"], timeout: 120)
            .expect(0, "verify --quorum 1")
        try await run(custos, ["verify", "--url", server.base, "--token-file", tokenFile, "--vkey", vkeyFile,
                               "--witness", dir.path("w1/witness.vkey"), "--witness", dir.path("w2/witness.vkey")], timeout: 120)
            .expect(1, "verify with both witnesses required")

        // The same on the data directory once the server has stopped.
        try await server.stop()
        try await run(custos, ["verify", "--data", data, "--vkey", vkeyFile, "--witness", w1], timeout: 120).expect(0, "verify --data --witness w1")
        try await run(custos, ["verify", "--data", data, "--vkey", vkeyFile, "--witness", dir.path("w2/witness.vkey")], timeout: 120)
            .expect(1, "verify --data --witness w2")

        try await witness.stop()
    }
}
