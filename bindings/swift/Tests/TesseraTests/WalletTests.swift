// The Swift mirror of bindings/kotlin/src/test/kotlin/tessera/tests/{WalletTests,FlowTests}.kt:
// the generated Swift bindings driving real wallets, as an iOS app does.
//
// Written for a machine with a Swift toolchain (none can be installed on the
// Linux CI machine, so this suite has never been compiled or run): build the
// xcframework with ../build-xcframework.sh, build tessera-ffi-testkit and
// tessera-registry for the host, start `tessera-registry serve --listen
// 127.0.0.1:7700 --database sqlite:/tmp/r.db --key-file /tmp/r.key`, then
//   TESSERA_TESTKIT=…/tessera-ffi-testkit TESSERA_REGISTRY_URL=http://127.0.0.1:7700 \
//   TESSERA_REGISTRY_KEYFILE=/tmp/r.key swift test
import Foundation
import XCTest
@testable import Tessera

/// A keystore holding one raw key, as an app would after reading it from the Keychain.
final class MemoryKeystore: Keystore, @unchecked Sendable {
    private let key: Data
    private let lock = NSLock()
    private(set) var calls = 0
    private(set) var salts: [Data] = []

    init(_ key: Data) { self.key = key }

    func storageKey(walletSalt: Data) throws -> Data {
        lock.lock(); defer { lock.unlock() }
        calls += 1
        salts.append(walletSalt)
        return key
    }
}

/// A keystore that is locked: it throws the declared error.
final class LockedKeystore: Keystore, @unchecked Sendable {
    func storageKey(walletSalt: Data) throws -> Data {
        throw KeystoreError.Unavailable(errorMessage: "user not authenticated")
    }
}

/// A keystore with a bug: it throws an error it never declared.
final class BrokenKeystore: Keystore, @unchecked Sendable {
    struct Bug: Error, CustomStringConvertible { var description: String { "keystore bug 42" } }
    func storageKey(walletSalt: Data) throws -> Data { throw Bug() }
}

/// The registry the tests run against, and the operator and gate side in its own process.
final class Registry {
    let url: String
    let keyFile: String
    let testkit: String

    init(url: String, keyFile: String, testkit: String) {
        self.url = url
        self.keyFile = keyFile
        self.testkit = testkit
    }

    func setupEvent(_ event: String, gateDir: URL) throws -> String {
        try run("setup", url, keyFile, gateDir.path, event)
    }

    func forgedTicket(holder: String) throws -> Data { try hex(run("forge-ticket", holder)) }

    /// One tap at the real gate engine: its command APDUs go to `card`, the answers come back.
    func gateTap(gateDir: URL, card: (Data) -> Data) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: testkit)
        process.arguments = ["gate-tap", url, gateDir.path]
        let out = Pipe(), into = Pipe()
        process.standardOutput = out
        process.standardInput = into
        try process.run()
        var result: String?
        var buffer = Data()
        while true {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                if line.hasPrefix("C ") {
                    let answer = card(try hex(String(line.dropFirst(2)))).map { String(format: "%02x", $0) }.joined()
                    into.fileHandleForWriting.write(Data((answer + "\n").utf8))
                } else if line.hasPrefix("RESULT ") {
                    result = String(line.dropFirst(7))
                }
            }
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0, let result else { throw NSError(domain: "gate-tap failed", code: 3) }
        return result
    }

    private func run(_ args: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: testkit)
        process.arguments = args
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw NSError(domain: "testkit \(args[0]) failed", code: 1) }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

func hex(_ text: String) throws -> Data {
    var data = Data(capacity: text.count / 2)
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let byte = UInt8(text[index..<next], radix: 16) else { throw NSError(domain: "bad hex", code: 2) }
        data.append(byte)
        index = next
    }
    return data
}

/// Two phones in one process: the reader's transceive is the card's processApdu.
final class TapChannel: NfcChannel, @unchecked Sendable {
    let card: Wallet
    init(_ card: Wallet) { self.card = card }
    func transceive(command: Data) throws -> Data { card.processApdu(apdu: command) }
}

final class LostChannel: NfcChannel, @unchecked Sendable {
    func transceive(command: Data) throws -> Data { throw NfcChannelError.TagLost(errorMessage: "moved away") }
}

let select = try! hex("00a4040008f05445535345524100")

final class WalletTests: XCTestCase {
    static var event = "concert-swift-\(UInt64(Date().timeIntervalSince1970))"
    static var gateDir: URL?
    var root: URL!
    var registry: Registry!

    override func setUpWithError() throws {
        let env = ProcessInfo.processInfo.environment
        guard let testkit = env["TESSERA_TESTKIT"], let url = env["TESSERA_REGISTRY_URL"],
              let keyFile = env["TESSERA_REGISTRY_KEYFILE"] else {
            XCTFail("set TESSERA_TESTKIT, TESSERA_REGISTRY_URL and TESSERA_REGISTRY_KEYFILE")
            return
        }
        registry = Registry(url: url, keyFile: keyFile, testkit: testkit)
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        if Self.gateDir == nil {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-gate-\(UUID().uuidString)")
            _ = try registry.setupEvent(Self.event, gateDir: dir)
            Self.gateDir = dir
        }
    }

    override func tearDownWithError() throws {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func path(_ name: String) -> String { root.appendingPathComponent("\(name).db").path }

    func wallet(_ name: String, keystore: Keystore = MemoryKeystore(generateStorageKey())) async throws -> Wallet {
        let wallet = try Wallet.create(path: path(name), keystore: keystore)
        _ = try await wallet.sync(url: registry.url)
        return wallet
    }

    /// Money and a ticket from the registry; buys first (a purchase pays with held notes).
    func stock(_ wallet: Wallet, notes: UInt64) async throws -> String {
        _ = try await wallet.topUp(url: registry.url, currency: "EUR", minor: notes + 2_500, payment: "test-card-ok")
        let ticket = try await wallet.buy(url: registry.url, eventId: Self.event, zone: "A", seat: nil)
        if notes > 0 { _ = try await wallet.withdraw(url: registry.url, currency: "EUR", minor: notes) }
        return ticket
    }

    func testAWalletSyncsTopsUpWithdrawsAndBuys() async throws {
        let alice = try await wallet("alice")
        let ticket = try await stock(alice, notes: 800)
        XCTAssertEqual(try alice.tickets().map(\.id), [ticket])
        XCTAssertEqual(try alice.tickets()[0].kind, .ticket)
        XCTAssertEqual(try alice.balance().first?.available, 800)
        XCTAssertNotNil(try alice.registryKey())
    }

    func testAReopenedWalletKeepsItsInstruments() async throws {
        let keystore = MemoryKeystore(generateStorageKey())
        let wallet = try await wallet("w", keystore: keystore)
        let account = wallet.accountKey()
        _ = try await wallet.topUp(url: registry.url, currency: "EUR", minor: 500, payment: "test-card-ok")
        _ = try await wallet.withdraw(url: registry.url, currency: "EUR", minor: 500)
        let reopened = try Wallet.open(path: path("w"), keystore: keystore)
        XCTAssertEqual(reopened.accountKey(), account)
        XCTAssertEqual(try reopened.balance().first?.available, 500)
        XCTAssertEqual(keystore.calls, 2)
    }

    func testTheOfflinePolicyIsKeptAndOutOfRangeIsInvalidInput() async throws {
        let keystore = MemoryKeystore(generateStorageKey())
        let wallet = try await wallet("w", keystore: keystore)
        XCTAssertEqual(try wallet.offlinePolicy(), OfflinePolicy(maxUnreconciledHops: 8, maxNoteValue: 10_000))
        let merchant = OfflinePolicy(maxUnreconciledHops: 2, maxNoteValue: 5_000)
        try wallet.setOfflinePolicy(policy: merchant)
        XCTAssertThrowsError(try wallet.setOfflinePolicy(policy: OfflinePolicy(maxUnreconciledHops: 65, maxNoteValue: 5_000))) { error in
            guard case WalletError.InvalidInput = error else { return XCTFail("\(error)") }
        }
        let reopened = try Wallet.open(path: path("w"), keystore: keystore)
        XCTAssertEqual(try reopened.offlinePolicy(), merchant)
    }

    func testWrongStorageKeyAndMissingWallet() async throws {
        let right = MemoryKeystore(generateStorageKey())
        _ = try Wallet.create(path: path("w"), keystore: right)
        XCTAssertThrowsError(try Wallet.open(path: path("w"), keystore: MemoryKeystore(generateStorageKey()))) { error in
            guard case WalletError.WrongStorageKey(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("storage key does not open this wallet"), message)
        }
        XCTAssertThrowsError(try Wallet.open(path: path("none"), keystore: right)) { error in
            guard case WalletError.NotCreated = error else { return XCTFail("\(error)") }
        }
    }

    func testKeystoreErrorsArriveAsWalletErrorKeystore() throws {
        XCTAssertThrowsError(try Wallet.create(path: path("a"), keystore: LockedKeystore())) { error in
            guard case WalletError.Keystore(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("user not authenticated"), message)
        }
        XCTAssertThrowsError(try Wallet.create(path: path("b"), keystore: BrokenKeystore())) { error in
            guard case WalletError.Keystore = error else { return XCTFail("\(error)") }
        }
    }

    func testForgedAndForeignInstrumentsAreRefused() async throws {
        let alice = try await wallet("alice")
        let bob = try await wallet("bob")
        XCTAssertThrowsError(try alice.import(bytes: registry.forgedTicket(holder: alice.newHolderKey()))) { error in
            guard case WalletError.Rejected(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("not in the trust list"), message)
        }
        let ticket = try await stock(alice, notes: 0)
        XCTAssertThrowsError(try bob.import(bytes: alice.export(id: ticket))) { error in
            guard case WalletError.NotOurs = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try alice.verify(id: "not hex")) { error in
            guard case WalletError.InvalidInput = error else { return XCTFail("\(error)") }
        }
    }

    func testASaleOverLibp2pThenReconciliation() async throws {
        let alice = try await wallet("alice")
        let bob = try await wallet("bob")
        let ticket = try await stock(alice, notes: 0)
        _ = try await bob.topUp(url: registry.url, currency: "EUR", minor: 2_500, payment: "test-card-ok")
        _ = try await bob.withdraw(url: registry.url, currency: "EUR", minor: 2_500)
        let seller = try await alice.startNode(config: loopbackNodeConfig())
        let buyer = try await bob.startNode(config: loopbackNodeConfig())
        var uri = try await buyer.uri()
        while !uri.contains("a=") { try await Task.sleep(nanoseconds: 20_000_000); uri = try await buyer.uri() }
        try await seller.dial(uri: uri)
        let exchange = try await seller.offer(peer: buyer.peerId(), items: [ticket],
                                              terms: .sale(price: Amount(currency: "EUR", minor: 2_500)), ttlSeconds: 300)
        buyerLoop: while let event = await buyer.nextEvent() {
            switch event {
            case .offerReceived(_, let offer):
                XCTAssertEqual(offer.offerId, exchange)
                try await buyer.accept(exchange: exchange)
            case .completed(_, let role, let received, _):
                XCTAssertEqual(role, .receiver)
                XCTAssertEqual(received, [ticket])
                break buyerLoop
            case .declined(_, _, let reason): return XCTFail("declined: \(reason)")
            default: continue
            }
        }
        sellerLoop: while let event = await seller.nextEvent() {
            if case .completed(_, .sender, _, let sent) = event { XCTAssertEqual(sent, [ticket]); break sellerLoop }
        }
        try await seller.stop()
        try await buyer.stop()
        XCTAssertEqual(try bob.tickets().map(\.id), [ticket])
        XCTAssertEqual(try alice.balance().first?.available, 2_500)
        let report = try await bob.sync(url: registry.url)
        XCTAssertTrue(report.certified.contains(ticket), "\(report)")
    }

    func testAGiftByNfcTapAndALostTag() async throws {
        let alice = try await wallet("alice")
        let bob = try await wallet("bob")
        _ = try await alice.topUp(url: registry.url, currency: "EUR", minor: 500, payment: "test-card-ok")
        _ = try await alice.withdraw(url: registry.url, currency: "EUR", minor: 500)
        XCTAssertThrowsError(try alice.nfcTransfer(channel: LostChannel(), message: Data())) { error in
            guard case NfcTransferError.Channel(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("moved away"), message)
        }
        let note = try alice.notes()[0]
        let offer = try alice.offerTransfer(items: [note.id], terms: .gift, ttlSeconds: 120)
        bob.acceptGifts(yes: true)
        let step = try alice.nfcTransfer(channel: TapChannel(bob), message: offer.step.send ?? Data())
        guard case .done = step else { return XCTFail("one tap completes a gift: \(step)") }
        XCTAssertEqual(try bob.balance().first?.available, note.amount?.minor)
    }

    func testATicketPresentedToTheGateThroughProcessApdu() async throws {
        let wallet = try await wallet("visitor")
        let ticket = try await stock(wallet, notes: 0)
        _ = try await wallet.sync(url: registry.url)
        let result = try registry.gateTap(gateDir: Self.gateDir!) { wallet.processApdu(apdu: $0) }
        XCTAssertEqual(result, "admitted \(ticket)")
        XCTAssertEqual(wallet.lastResult()?.admitted, true)
        let again = try registry.gateTap(gateDir: Self.gateDir!) { wallet.processApdu(apdu: $0) }
        XCTAssertFalse(again.hasPrefix("admitted"), again)
    }

    func testRegistryRefusalsCarryTheRegistrysCodeAndText() async throws {
        let wallet = try await wallet("w")
        do {
            _ = try await wallet.buy(url: registry.url, eventId: Self.event, zone: "A", seat: nil)
            XCTFail("bought without money")
        } catch RegistryError.Refused(let status, let code, let message) {
            XCTAssertTrue((400..<500).contains(Int(status)))
            XCTAssertFalse(code.isEmpty || message.isEmpty)
        }
        do {
            _ = try await wallet.sync(url: "ftp://x")
            XCTFail("not a URL")
        } catch RegistryError.InvalidInput {}
    }

    /// Prints the cost of the cheapest exported calls and of processApdu; never asserts on time.
    func testRoundTripCostOfATrivialFfiCallAndOfProcessApdu() async throws {
        let wallet = try await wallet("w")
        let n = 20_000
        func measure(_ body: () -> Int) -> Double {
            var sink = 0
            for _ in 0..<n { sink &+= body() }
            // Thread CPU time, as the Kotlin suite measures.
            let start = clock_gettime_nsec_np(CLOCK_THREAD_CPUTIME_ID)
            for _ in 0..<n { sink &+= body() }
            XCTAssertGreaterThan(sink, 0)
            return Double(clock_gettime_nsec_np(CLOCK_THREAD_CPUTIME_ID) - start) / Double(n)
        }
        let baseline = measure { String(describing: 0.1).count }
        for (name, ns) in [
            ("libraryVersion()", measure { libraryVersion().count }),
            ("wallet.accountKey()", measure { wallet.accountKey().count }),
            ("wallet.processApdu(SELECT)", measure { wallet.processApdu(apdu: select).count }),
        ] {
            print(String(format: "ffi-cost: %-28@ %10.1f ns/call %6.0fx", name as NSString, ns, ns / baseline))
        }
    }
}
