import ArgumentParser
import CustosCore
import CustosServer
import CustosTrail

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the trail's Ed25519 signing key and print its verifier key.",
        discussion: """
            Writes DIR/keys/trail.key (mode 0600) and DIR/keys/trail.vkey. Refuses to replace an \
            existing key. Give the printed verifier key to whoever audits the trail; they check \
            it with `custos verify --vkey`. The origin names the log in every checkpoint; it must \
            have no spaces or '+' (a schema-less URL is recommended).
            """)

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("Checkpoint origin / key name (default: custos.local/<hostname>).", valueName: "NAME"))
    var origin: String?

    func run() throws {
        let layout = TrailLayout(dataDirectory: data.data)
        let signer: NoteSigner
        do {
            signer = try TrailKeys.generate(layout: layout, origin: origin ?? DataStore.defaultOrigin())
        } catch let e as TrailError where e.code == .key {
            throw CLIError.usage(e.message)
        } catch let e as NoteError {
            throw CLIError.usage("--origin: \(e.message)")
        }
        print(signer.vkey)
    }
}
