// The demo's state and actions over the Tessera Swift bindings (the same
// screens as android-demo's WalletViewModel): tickets and balance, incoming
// offer, transfer progress, the gate's answer.
import Foundation
import Tessera

struct IncomingOffer: Equatable {
    let exchange: String
    let items: [String]
    let price: String?
}

func money(_ a: Amount) -> String { String(format: "%d.%02d %@", a.minor / 100, a.minor % 100, a.currency) }

/// The storage key lives in the Keychain (kSecAttrAccessibleWhenUnlockedThisDeviceOnly).
final class KeychainKeystore: Keystore, @unchecked Sendable {
    func storageKey(walletSalt: Data) throws -> Data {
        let account = walletSalt.base64EncodedString()
        var query: [String: Any] = [kSecClass as String: kSecClassGenericPassword,
                                    kSecAttrService as String: "tessera-storage-key",
                                    kSecAttrAccount as String: account,
                                    kSecReturnData as String: true]
        var item: CFTypeRef?
        if SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess, let key = item as? Data { return key }
        // First open of a new wallet: make its key now.
        let key = generateStorageKey()
        query.removeValue(forKey: kSecReturnData as String)
        query[kSecValueData as String] = key
        query[kSecAttrAccessible as String] = kSecAttrAccessibleWhenUnlockedThisDeviceOnly
        guard SecItemAdd(query as CFDictionary, nil) == errSecSuccess else {
            throw KeystoreError.Unavailable(errorMessage: "the keychain refused the storage key")
        }
        return key
    }
}

@MainActor
final class WalletModel: ObservableObject {
    @Published var tickets: [InstrumentSummary] = []
    @Published var balance: [String] = []
    @Published var incoming: IncomingOffer?
    @Published var transfers: [TransferSummary] = []
    @Published var gateAnswer: String?
    @Published var uri: String?
    @Published var error: String?

    let wallet: Wallet
    let registryUrl: String
    private var node: P2pNode?

    init(wallet: Wallet, registryUrl: String) {
        self.wallet = wallet
        self.registryUrl = registryUrl
    }

    private func attempt<T>(_ body: () async throws -> T) async -> T? {
        do { let value = try await body(); error = nil; return value } catch { self.error = "\(error)"; return nil }
    }

    func refresh() async {
        _ = await attempt {
            tickets = try wallet.tickets()
            balance = try wallet.balance().map { money(Amount(currency: $0.currency, minor: $0.available)) }
            transfers = try wallet.transfers()
        }
    }

    func sync() async { _ = await attempt { try await wallet.sync(url: registryUrl) }; await refresh() }

    func buy(event: String) async {
        _ = await attempt { try await wallet.buy(url: registryUrl, eventId: event, zone: "A", seat: nil) }
        await refresh()
    }

    func goOnline() async {
        if node == nil { node = await attempt { try await wallet.startNode(config: defaultNodeConfig()) } }
        guard let node else { return }
        uri = await attempt { try await node.uri() }
        while let event = await node.nextEvent() {
            switch event {
            case .offerReceived(_, let offer):
                incoming = IncomingOffer(exchange: offer.offerId, items: offer.items.map(\.label), price: offer.price.map(money))
            case .failed(_, _, let reason): error = reason
            default: await refresh()
            }
        }
    }

    func goOffline() async {
        if let node { _ = await attempt { try await node.stop() } }
        node = nil
        uri = nil
        await refresh()
    }

    func answer(accept: Bool) async {
        guard let offer = incoming, let node else { return }
        _ = await attempt {
            if accept { try await node.accept(exchange: offer.exchange) } else { try await node.decline(exchange: offer.exchange, reason: "declined") }
        }
        incoming = nil
        await refresh()
    }

    /// Core NFC found the other phone (an Android phone in card emulation):
    /// give it `ids` in one tap. Runs off the main thread (transceive blocks).
    nonisolated func giveByTap(channel: NfcChannel, ids: [String]) throws -> Bool {
        let offer = try wallet.offerTransfer(items: ids, terms: .gift, ttlSeconds: 120)
        if case .done = try wallet.nfcTransfer(channel: channel, message: offer.step.send ?? Data()) { return true }
        return false
    }
}
