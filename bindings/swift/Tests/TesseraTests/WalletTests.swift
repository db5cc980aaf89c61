// The Swift mirror of bindings/kotlin/src/test/kotlin/tessera/tests/WalletTests.kt:
// the generated Swift bindings driving real wallets, as an iOS app does.
//
// Written for a machine with a Swift toolchain (none can be installed on the
// Linux CI machine, so this suite has not been run): build the xcframework
// with ../build-xcframework.sh, build tessera-ffi-testkit for the host, then
//   TESSERA_TESTKIT=$PWD/../../target/debug/tessera-ffi-testkit swift test
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

/// The registry and issuer side, in its own process (tessera-ffi-testkit).
final class Testkit {
    let binary: String
    let dir: URL
    private(set) var registryKey = ""

    init(binary: String, dir: URL) throws {
        self.binary = binary
        self.dir = dir
        registryKey = try run("init", dir.path)
    }

    func trustList(_ version: Int) throws -> Data { try hex(run("trust-list", dir.path, String(version))) }
    func ticket(holder: String, event: String, title: String) throws -> Data {
        try hex(run("issue-ticket", dir.path, holder, event, title))
    }
    func note(holder: String, currency: String, minor: UInt64) throws -> Data {
        try hex(run("issue-note", dir.path, holder, currency, String(minor)))
    }
    func forgedTicket(holder: String) throws -> Data { try hex(run("forge-ticket", dir.path, holder)) }

    private func run(_ args: String...) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = args
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw NSError(domain: "testkit \(args[0]) failed", code: 1) }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func hex(_ text: String) throws -> Data {
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
}

final class WalletTests: XCTestCase {
    var root: URL!
    var kit: Testkit!

    override func setUpWithError() throws {
        guard let binary = ProcessInfo.processInfo.environment["TESSERA_TESTKIT"] else {
            XCTFail("set TESSERA_TESTKIT to the path of tessera-ffi-testkit")
            return
        }
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        kit = try Testkit(binary: binary, dir: root.appendingPathComponent("registry"))
    }

    override func tearDownWithError() throws {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func path(_ name: String) -> String { root.appendingPathComponent("\(name).db").path }

    func wallet(_ name: String, keystore: Keystore = MemoryKeystore(generateStorageKey())) throws -> Wallet {
        let wallet = try Wallet.create(path: path(name), keystore: keystore)
        try wallet.pinRegistry(key: kit.registryKey)
        try wallet.installTrustList(bytes: kit.trustList(1))
        return wallet
    }

    func testTwoWalletsReceiveTicketsAndNotesListBalanceHistory() throws {
        let alice = try wallet("alice")
        let bob = try wallet("bob")
        XCTAssertNotEqual(alice.accountKey(), bob.accountKey())
        XCTAssertEqual(alice.registryKey(), kit.registryKey)
        XCTAssertEqual(alice.trustListVersion(), 1)

        let ticket = try alice.import(bytes: kit.ticket(holder: alice.newHolderKey(), event: "concert-7", title: "Concert"))
        XCTAssertEqual(ticket.kind, .ticket)
        XCTAssertEqual(ticket.holding, .held)
        XCTAssertEqual(ticket.eventId, "concert-7")
        XCTAssertEqual(ticket.usesLeft, 1)
        for minor: UInt64 in [500, 200, 100] {
            _ = try alice.import(bytes: kit.note(holder: alice.newHolderKey(), currency: "EUR", minor: minor))
        }
        _ = try bob.import(bytes: kit.note(holder: bob.newHolderKey(), currency: "EUR", minor: 1000))
        _ = try bob.import(bytes: kit.note(holder: bob.newHolderKey(), currency: "CHF", minor: 200))

        XCTAssertEqual(try alice.tickets(), [ticket])
        XCTAssertEqual(try alice.notes().count, 3)
        XCTAssertEqual(try alice.coupons().count, 0)
        XCTAssertEqual(try bob.tickets().count, 0)
        let balance = try alice.balance()
        XCTAssertEqual(balance.count, 1)
        XCTAssertEqual(balance[0].currency, "EUR")
        XCTAssertEqual(balance[0].available, 800)
        XCTAssertEqual(balance[0].pendingOut, 0)
        let bobBalance = Dictionary(uniqueKeysWithValues: try bob.balance().map { ($0.currency, $0.available) })
        XCTAssertEqual(bobBalance, ["CHF": 200, "EUR": 1000])

        let history = try alice.history(limit: 10)
        XCTAssertEqual(history.count, 4)
        XCTAssertTrue(history.allSatisfy { $0.direction == .in })
        XCTAssertTrue(history.allSatisfy { $0.memo.contains("Testkit Arena") })
        XCTAssertEqual(history.last?.instrumentId, ticket.id)
        XCTAssertEqual(try alice.history(limit: 2).count, 2)
    }

    func testVerifyAndExportAHeldTicket() throws {
        let wallet = try wallet("w")
        let holder = try wallet.newHolderKey()
        let ticket = try wallet.import(bytes: kit.ticket(holder: holder, event: "match-1", title: "Match"))
        let verified = try wallet.verify(id: ticket.id)
        XCTAssertEqual(verified.id, ticket.id)
        XCTAssertEqual(verified.holder, holder)
        XCTAssertEqual(verified.sequence, 0)
        XCTAssertEqual(verified.tip.count, 64)
        let exported = try wallet.export(id: ticket.id)
        XCTAssertThrowsError(try wallet.import(bytes: exported)) { error in
            guard case WalletError.AlreadyHeld(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains(ticket.id))
        }
    }

    func testAReopenedWalletKeepsItsInstruments() throws {
        let keystore = MemoryKeystore(generateStorageKey())
        var wallet: Wallet? = try self.wallet("w", keystore: keystore)
        let account = wallet!.accountKey()
        _ = try wallet!.import(bytes: kit.note(holder: wallet!.newHolderKey(), currency: "EUR", minor: 50))
        wallet = nil
        let reopened = try Wallet.open(path: path("w"), keystore: keystore)
        XCTAssertEqual(reopened.accountKey(), account)
        XCTAssertEqual(try reopened.balance().first?.available, 50)
        XCTAssertEqual(keystore.calls, 2)
        XCTAssertEqual(keystore.salts[0].count, 16)
        XCTAssertEqual(keystore.salts[0], keystore.salts[1])
    }

    func testWrongStorageKeyIsWalletErrorWrongStorageKey() throws {
        let right = MemoryKeystore(generateStorageKey())
        _ = try wallet("w", keystore: right)
        XCTAssertThrowsError(try Wallet.open(path: path("w"), keystore: MemoryKeystore(generateStorageKey()))) { error in
            guard case WalletError.WrongStorageKey(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("storage key does not open this wallet"))
        }
        XCTAssertNoThrow(try Wallet.open(path: path("w"), keystore: right))
        XCTAssertThrowsError(try Wallet.open(path: path("nothing-here"), keystore: right)) { error in
            guard case WalletError.NotCreated = error else { return XCTFail("\(error)") }
        }
    }

    func testAForgedTicketIsRejectedAndChangesNothing() throws {
        let wallet = try wallet("w")
        XCTAssertThrowsError(try wallet.import(bytes: kit.forgedTicket(holder: wallet.newHolderKey()))) { error in
            guard case WalletError.Rejected(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("not in the trust list"))
        }
        XCTAssertEqual(try wallet.tickets().count, 0)
        XCTAssertEqual(try wallet.history(limit: 10).count, 0)
    }

    func testAnInstrumentForAnotherWalletIsNotOurs() throws {
        let alice = try wallet("alice")
        let bob = try wallet("bob")
        let forAlice = try kit.ticket(holder: alice.newHolderKey(), event: "concert-7", title: "Concert")
        XCTAssertThrowsError(try bob.import(bytes: forAlice)) { error in
            guard case WalletError.NotOurs(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("key this wallet does not have"))
        }
        XCTAssertNoThrow(try alice.import(bytes: forAlice))
    }

    func testALockedKeystoresErrorArrivesAsWalletErrorKeystore() throws {
        XCTAssertThrowsError(try Wallet.create(path: path("w"), keystore: LockedKeystore())) { error in
            guard case WalletError.Keystore(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("user not authenticated"))
        }
        XCTAssertNoThrow(try Wallet.create(path: path("w"), keystore: MemoryKeystore(generateStorageKey())))
    }

    func testAnUndeclaredKeystoreErrorArrivesAsWalletErrorKeystore() throws {
        XCTAssertThrowsError(try Wallet.create(path: path("w"), keystore: BrokenKeystore())) { error in
            guard case WalletError.Keystore = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try Wallet.create(path: path("v"), keystore: MemoryKeystore(Data(count: 16)))) { error in
            guard case WalletError.Keystore(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("16 bytes"))
        }
    }

    func testMalformedInputIsATypedError() throws {
        let wallet = try wallet("w")
        XCTAssertThrowsError(try wallet.verify(id: "not hex")) { error in
            guard case WalletError.InvalidInput = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try wallet.export(id: String(repeating: "00", count: 16))) { error in
            guard case WalletError.UnknownInstrument = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try wallet.import(bytes: Data(repeating: 0x55, count: 40))) { error in
            guard case WalletError.Decode = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try wallet.import(bytes: Data(count: 2_000_000))) { error in
            guard case WalletError.Decode = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try wallet.installTrustList(bytes: kit.trustList(0))) { error in
            guard case WalletError.Trust = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try wallet.pinRegistry(key: String(repeating: "11", count: 32))) { error in
            guard case WalletError.RegistryMismatch = error else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(wallet.registryKey(), kit.registryKey)
        XCTAssertEqual(wallet.trustListVersion(), 1)
    }

    /// Prints the cost of the cheapest exported calls; never asserts on time.
    func testRoundTripCostOfATrivialFfiCall() throws {
        let wallet = try wallet("w")
        let n = 20_000
        func measure(_ body: () -> Int) -> Double {
            var sink = 0
            for _ in 0..<n { sink &+= body() }
            // Thread CPU time, as the Kotlin suite measures: wall time on a
            // loaded machine mostly measures waiting for a core.
            let start = clock_gettime_nsec_np(CLOCK_THREAD_CPUTIME_ID)
            for _ in 0..<n { sink &+= body() }
            XCTAssertGreaterThan(sink, 0)
            return Double(clock_gettime_nsec_np(CLOCK_THREAD_CPUTIME_ID) - start) / Double(n)
        }
        let baseline = measure { String(describing: 0.1).count }
        let version = measure { libraryVersion().count }
        let account = measure { wallet.accountKey().count }
        print(String(format: "ffi-cost: swift baseline      %8.1f ns/call", baseline))
        print(String(format: "ffi-cost: libraryVersion()     %8.1f ns/call (%.0fx)", version, version / baseline))
        print(String(format: "ffi-cost: wallet.accountKey()  %8.1f ns/call (%.0fx)", account, account / baseline))
    }
}
