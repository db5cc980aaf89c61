// The wallet facade from Kotlin: keystores, listing, errors as exceptions.
// Instruments come from the real registry (top-up, withdraw, buy).
package tessera.tests

import kotlinx.coroutines.runBlocking
import uniffi.tessera.Direction
import uniffi.tessera.Holding
import uniffi.tessera.Kind
import uniffi.tessera.OfflinePolicy
import uniffi.tessera.Wallet
import uniffi.tessera.WalletException
import uniffi.tessera.generateStorageKey

/** Money and a ticket for [wallet] from the registry, the way an app gets them. */
fun stock(wallet: Wallet, registry: Registry, event: String, notes: ULong): String = runBlocking {
    wallet.topUp(registry.url, "EUR", notes + 2_500uL, "test-card-ok")
    // Buy first: a purchase pays with held notes before the account balance.
    val ticket = wallet.buy(registry.url, event, "A", null)
    if (notes > 0uL) wallet.withdraw(registry.url, "EUR", notes)
    ticket
}

class WalletTests(private val registry: Registry, private val event: String) {
    val tests: List<Pair<String, () -> Unit>> = listOf(
        "a wallet syncs, tops up, withdraws notes and buys a ticket; list, balance, history" to ::stockedWallet,
        "verify and export a held ticket" to ::verifyAndExport,
        "a reopened wallet keeps its instruments" to ::reopen,
        "wrong storage key is WalletException.WrongStorageKey" to ::wrongStorageKey,
        "a forged ticket is WalletException.Rejected and changes nothing" to ::forgedTicket,
        "an instrument for another wallet is WalletException.NotOurs" to ::notOurs,
        "a locked keystore's exception arrives as WalletException.Keystore" to ::lockedKeystore,
        "an undeclared keystore exception arrives as WalletException.Keystore" to ::brokenKeystore,
        "malformed input is a typed exception and changes nothing" to ::malformedInput,
        "the offline policy is kept across a reopen; out of range is InvalidInput" to ::offlinePolicy,
    )

    private fun stockedWallet(): Unit = Fixture(registry).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        check(alice.accountKey() != bob.accountKey()) { "two wallets, two account keys" }
        check(alice.registryKey() != null && alice.registryKey() == bob.registryKey()) { "both pinned the registry" }
        check((alice.trustListVersion() ?: 0uL) >= 1uL) { "trust list installed" }

        val ticketId = stock(alice, registry, event, 800uL)
        val ticket = alice.tickets().single()
        assertEquals(ticketId, ticket.id, "bought ticket")
        assertEquals(Kind.TICKET, ticket.kind, "kind")
        assertEquals(Holding.HELD, ticket.holding, "holding")
        assertEquals(event, ticket.eventId, "event id")
        assertEquals(1.toUShort(), ticket.usesLeft, "uses left")
        check(alice.notes().isNotEmpty()) { "withdrawn notes" }
        assertEquals(0, alice.coupons().size, "alice's coupons")
        assertEquals(0, bob.tickets().size, "bob's tickets")
        val balance = alice.balance().single()
        assertEquals("EUR" to 800uL, balance.currency to balance.available, "alice's balance in notes")
        assertEquals(0uL, balance.pendingOut, "alice's pending")

        val history = alice.history(50u)
        check(history.any { it.direction == Direction.IN && it.instrumentId == ticketId }) { "the ticket came in: $history" }
        assertEquals(2, alice.history(2u).size, "history limit")
    }

    private fun verifyAndExport(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val id = stock(wallet, registry, event, 0uL)
        val verified = wallet.verify(id)
        assertEquals(id, verified.id, "verified id")
        assertEquals(64, verified.tip.length, "tip digest is hex")
        val exported = wallet.export(id)
        val again = assertThrows<WalletException.AlreadyHeld>("re-import") { wallet.import(exported) }
        check(again.errorMessage.contains(id)) { "message names the instrument: ${again.errorMessage}" }
    }

    private fun reopen(): Unit = Fixture(registry).use { f ->
        val keystore = MemoryKeystore(generateStorageKey())
        val wallet = f.wallet("w", keystore)
        val account = wallet.accountKey()
        runBlocking {
            wallet.topUp(registry.url, "EUR", 500uL, "test-card-ok")
            wallet.withdraw(registry.url, "EUR", 500uL)
        }
        wallet.close()
        val reopened = f.track(Wallet.open(f.path("w"), keystore))
        assertEquals(account, reopened.accountKey(), "same account")
        assertEquals(500uL, reopened.balance().single().available, "same money")
        assertEquals(2, keystore.calls, "the keystore is asked once per create and once per open")
        assertEquals(16, keystore.salts[0].size, "salt length")
        check(keystore.salts[0].contentEquals(keystore.salts[1])) { "the same wallet has the same salt" }
    }

    private fun wrongStorageKey(): Unit = Fixture(registry).use { f ->
        val right = MemoryKeystore(generateStorageKey())
        f.track(Wallet.create(f.path("w"), right)).close()
        val e = assertThrows<WalletException.WrongStorageKey>("open with another key") {
            Wallet.open(f.path("w"), MemoryKeystore(generateStorageKey())).close()
        }
        check(e.errorMessage.contains("storage key does not open this wallet")) { "useful message: ${e.errorMessage}" }
        f.track(Wallet.open(f.path("w"), right))
        val missing = assertThrows<WalletException.NotCreated>("open where there is none") {
            Wallet.open(f.path("nothing-here"), right).close()
        }
        check(missing.errorMessage.isNotBlank()) { "message" }
    }

    private fun forgedTicket(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val e = assertThrows<WalletException.Rejected>("forged ticket") {
            wallet.import(registry.forgedTicket(wallet.newHolderKey()))
        }
        check(e.errorMessage.contains("not in the trust list")) { "says why: ${e.errorMessage}" }
        assertEquals(0, wallet.tickets().size, "no ticket")
    }

    private fun notOurs(): Unit = Fixture(registry).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        val id = stock(alice, registry, event, 0uL)
        val e = assertThrows<WalletException.NotOurs>("bob imports alice's ticket") { bob.import(alice.export(id)) }
        check(e.errorMessage.contains("key this wallet does not have")) { "says why: ${e.errorMessage}" }
        assertEquals(0, bob.tickets().size, "bob has nothing")
    }

    private fun lockedKeystore(): Unit = Fixture(registry).use { f ->
        val e = assertThrows<WalletException.Keystore>("locked keystore") {
            Wallet.create(f.path("w"), LockedKeystore()).close()
        }
        check(e.errorMessage.contains("user not authenticated")) { "carries the app's text: ${e.errorMessage}" }
        // Nothing was written: the same path still takes a new wallet.
        f.track(Wallet.create(f.path("w"), MemoryKeystore(generateStorageKey())))
    }

    private fun brokenKeystore(): Unit = Fixture(registry).use { f ->
        val e = assertThrows<WalletException.Keystore>("broken keystore") {
            Wallet.create(f.path("w"), BrokenKeystore()).close()
        }
        check(e.errorMessage.contains("keystore bug 42")) { "carries the exception's text: ${e.errorMessage}" }
        val short = assertThrows<WalletException.Keystore>("a 16-byte key") {
            Wallet.create(f.path("v"), MemoryKeystore(ByteArray(16))).close()
        }
        check(short.errorMessage.contains("16 bytes")) { "says what was wrong: ${short.errorMessage}" }
    }

    private fun malformedInput(): Unit = Fixture(registry).use { f ->
        val wallet = f.wallet("w")
        val pinned = wallet.registryKey()
        val version = wallet.trustListVersion()
        assertThrows<WalletException.InvalidInput>("id not hex") { wallet.verify("not hex") }
        assertThrows<WalletException.UnknownInstrument>("unknown id") { wallet.export("00".repeat(16)) }
        assertThrows<WalletException.Decode>("garbage instrument") { wallet.import(ByteArray(40) { 0x55 }) }
        assertThrows<WalletException.Decode>("oversized instrument") { wallet.import(ByteArray(2_000_000)) }
        assertThrows<WalletException.Decode>("garbage trust list") { wallet.installTrustList(ByteArray(10)) }
        assertThrows<WalletException.RegistryMismatch>("another registry") { wallet.pinRegistry("11".repeat(32)) }
        assertEquals(pinned, wallet.registryKey(), "pin unchanged")
        assertEquals(version, wallet.trustListVersion(), "trust list unchanged")
        assertEquals(0, wallet.history(10u).size, "no history")
    }

    private fun offlinePolicy(): Unit = Fixture(registry).use { f ->
        val keystore = MemoryKeystore(generateStorageKey())
        val wallet = f.wallet("w", keystore)
        assertEquals(OfflinePolicy(8u, 10_000uL), wallet.offlinePolicy(), "the default")
        val merchant = OfflinePolicy(2u, 5_000uL)
        wallet.setOfflinePolicy(merchant)
        assertThrows<WalletException.InvalidInput>("65 hops") { wallet.setOfflinePolicy(OfflinePolicy(65u, 5_000uL)) }
        wallet.close()
        val reopened = f.track(Wallet.open(f.path("w"), keystore))
        assertEquals(merchant, reopened.offlinePolicy(), "kept, and the refused setting changed nothing")
    }
}
