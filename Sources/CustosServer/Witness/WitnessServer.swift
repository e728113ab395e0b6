import CustosCore
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The HTTP face of a `Witness` (c2sp.org/tlog-witness), with the submission and monitoring
/// prefixes both at the root:
///
/// - `POST /add-checkpoint`: 200 with the cosignature line(s); 400, 403, 404, 409 (body: the
///   cosigned size, `Content-Type: text/x.tlog.size`), 413, 422 as the spec assigns them.
/// - `GET /<hex SHA-256 of the origin>/checkpoint`: the latest cosigned checkpoint, 404 if none.
/// - `GET /healthz`.
public func buildWitnessRouter(witness: Witness, logger: Logger? = nil) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/healthz") { _, _ in Response.text("ok\n") }
    router.post("/add-checkpoint") { req, _ in
        let body: [UInt8]
        do {
            var buffer = try await req.body.collect(upTo: Witness.maxBodyBytes)
            body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch {
            return Response.text("the request is larger than \(Witness.maxBodyBytes) bytes\n", status: .contentTooLarge)
        }
        do throws(WitnessError) {
            let lines = try witness.addCheckpoint(body)
            return Response.text(lines, contentType: "text/plain; charset=utf-8")
        } catch {
            if error.status >= 409 || error.status == 403 {
                logger?.notice("add-checkpoint refused: \(error.message)")
            }
            if error.status == 409, let size = error.cosignedSize {
                return Response.text("\(size)\n", status: .conflict, contentType: "text/x.tlog.size")
            }
            return Response.text(error.message + "\n", status: HTTPResponse.Status(code: error.status))
        }
    }
    router.get("/:hash/checkpoint") { _, ctx in
        guard let hash = ctx.parameters.get("hash"), let origin = witness.origin(hash: hash) else {
            return Response.text("no such log\n", status: .notFound)
        }
        do throws(WitnessError) {
            guard let note = try witness.cosignedCheckpoint(origin: origin) else {
                return Response.text("nothing cosigned yet for this log\n", status: .notFound)
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: note)))
        } catch {
            return Response.text(error.message + "\n", status: HTTPResponse.Status(code: error.status))
        }
    }
    return router
}

/// The application `custos witness serve` runs.
public func buildWitnessApplication(witness: Witness, host: String, port: Int, logger: Logger? = nil) -> some ApplicationProtocol {
    let http1 = HTTPServerBuilder.http1(configuration: .init(
        idleTimeout: .seconds(30),
        httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100)))
    return Application(
        router: buildWitnessRouter(witness: witness, logger: logger),
        server: http1,
        configuration: .init(address: .hostname(host, port: port), serverName: "custos-witness",
                             availableConnectionsDelegate: MaximumAvailableConnections(256)),
        logger: logger)
}
