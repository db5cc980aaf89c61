// The JVM suite: the Kotlin bindings driving real wallets, the way an app
// does. Run by scripts/test.d/60-kotlin.sh; see bindings/README.md.
//
// Instruments and trust lists come from `tessera-ffi-testkit`, a separate
// process standing in for the registry until the suite can run against a
// real `tessera-registry`.
package tessera.tests

import java.io.File
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import uniffi.tessera.Direction
import uniffi.tessera.Holding
import uniffi.tessera.Keystore
import uniffi.tessera.KeystoreException
import uniffi.tessera.Kind
import uniffi.tessera.Wallet
import uniffi.tessera.WalletException
import uniffi.tessera.generateStorageKey
import uniffi.tessera.libraryVersion

/** A keystore holding one raw key, as an app would after unwrapping it with Android Keystore. */
class MemoryKeystore(private val key: ByteArray) : Keystore {
    var calls = 0
        private set
    val salts = mutableListOf<ByteArray>()

    override fun storageKey(walletSalt: ByteArray): ByteArray {
        calls++
        salts.add(walletSalt.copyOf())
        return key.copyOf()
    }
}

/** A keystore that is locked: it throws the declared exception. */
class LockedKeystore : Keystore {
    override fun storageKey(walletSalt: ByteArray): ByteArray =
        throw KeystoreException.Unavailable("user not authenticated")
}

/** A keystore with a bug: it throws something it never declared. */
class BrokenKeystore : Keystore {
    override fun storageKey(walletSalt: ByteArray): ByteArray =
        throw IllegalStateException("keystore bug 42")
}

/** The registry and issuer side, in its own process. */
class Testkit(private val binary: String, private val dir: File) {
    val registryKey: String = run("init", dir.path)

    fun trustList(version: Int): ByteArray = run("trust-list", dir.path, version.toString()).hexToBytes()
    fun ticket(holder: String, event: String, title: String): ByteArray =
        run("issue-ticket", dir.path, holder, event, title).hexToBytes()
    fun note(holder: String, currency: String, minor: Long): ByteArray =
        run("issue-note", dir.path, holder, currency, minor.toString()).hexToBytes()
    fun forgedTicket(holder: String): ByteArray = run("forge-ticket", dir.path, holder).hexToBytes()

    private fun run(vararg args: String): String {
        val process = ProcessBuilder(listOf(binary) + args).redirectErrorStream(false).start()
        val out = process.inputStream.bufferedReader().readText().trim()
        val err = process.errorStream.bufferedReader().readText().trim()
        check(process.waitFor(60, TimeUnit.SECONDS)) { "testkit ${args[0]} timed out" }
        check(process.exitValue() == 0) { "testkit ${args.joinToString(" ")} failed: $err" }
        return out
    }
}

fun String.hexToBytes(): ByteArray {
    require(length % 2 == 0) { "odd hex length" }
    return ByteArray(length / 2) { i -> substring(2 * i, 2 * i + 2).toInt(16).toByte() }
}

fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }

class Failure(message: String) : AssertionError(message)

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw Failure(what())
}

fun <T> assertEquals(expected: T, actual: T, what: String) {
    if (expected != actual) throw Failure("$what: expected <$expected>, got <$actual>")
}

inline fun <reified E : Throwable> assertThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw Failure("$what: expected ${E::class.simpleName}, got $e")
    }
    throw Failure("$what: expected ${E::class.simpleName}, nothing was thrown")
}

class Fixture(testkitBinary: String) : AutoCloseable {
    val root: File = Files.createTempDirectory("tessera-kotlin").toFile()
    val kit = Testkit(testkitBinary, File(root, "registry"))
    private val opened = mutableListOf<Wallet>()

    fun path(name: String): String = File(root, "$name.db").path

    /** A new wallet that trusts the testkit's registry and issuer. */
    fun wallet(name: String, keystore: Keystore = MemoryKeystore(generateStorageKey())): Wallet {
        val wallet = Wallet.create(path(name), keystore)
        opened.add(wallet)
        wallet.pinRegistry(kit.registryKey)
        wallet.installTrustList(kit.trustList(1))
        return wallet
    }

    fun track(wallet: Wallet): Wallet = wallet.also { opened.add(it) }

    override fun close() {
        opened.forEach { it.close() }
        root.deleteRecursively()
    }
}

class WalletTests(private val testkit: String) {
    val tests: List<Pair<String, () -> Unit>> = listOf(
        "two wallets receive tickets and notes, list, balance, history" to ::twoWallets,
        "verify and export a held ticket" to ::verifyAndExport,
        "a reopened wallet keeps its instruments" to ::reopen,
        "wrong storage key is WalletException.WrongStorageKey" to ::wrongStorageKey,
        "a forged ticket is WalletException.Rejected and changes nothing" to ::forgedTicket,
        "an instrument for another wallet is WalletException.NotOurs" to ::notOurs,
        "a locked keystore's exception arrives as WalletException.Keystore" to ::lockedKeystore,
        "an undeclared keystore exception arrives as WalletException.Keystore" to ::brokenKeystore,
        "malformed input is a typed exception" to ::malformedInput,
        "round-trip cost of a trivial FFI call" to ::ffiCost,
    )

    private fun twoWallets(): Unit = Fixture(testkit).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        check(alice.accountKey() != bob.accountKey()) { "two wallets, two account keys" }
        assertEquals(f.kit.registryKey, alice.registryKey(), "pinned registry")
        assertEquals(1uL, alice.trustListVersion(), "trust list version")

        val ticket = alice.import(f.kit.ticket(alice.newHolderKey(), "concert-7", "Concert"))
        assertEquals(Kind.TICKET, ticket.kind, "kind")
        assertEquals(Holding.HELD, ticket.holding, "holding")
        assertEquals("concert-7", ticket.eventId, "event id")
        assertEquals(1.toUShort(), ticket.usesLeft, "uses left")
        for (minor in listOf(500L, 200L, 100L)) alice.import(f.kit.note(alice.newHolderKey(), "EUR", minor))
        bob.import(f.kit.note(bob.newHolderKey(), "EUR", 1000))
        bob.import(f.kit.note(bob.newHolderKey(), "CHF", 200))

        assertEquals(listOf(ticket), alice.tickets(), "alice's tickets")
        assertEquals(3, alice.notes().size, "alice's notes")
        assertEquals(0, alice.coupons().size, "alice's coupons")
        assertEquals(0, bob.tickets().size, "bob's tickets")
        val aliceBalance = alice.balance()
        assertEquals(1, aliceBalance.size, "alice's currencies")
        assertEquals("EUR" to 800uL, aliceBalance[0].currency to aliceBalance[0].available, "alice's balance")
        assertEquals(0uL, aliceBalance[0].pendingOut, "alice's pending")
        val bobBalance = bob.balance().associate { it.currency to it.available }
        assertEquals(mapOf("CHF" to 200uL, "EUR" to 1000uL), bobBalance, "bob's balance")

        val history = alice.history(10u)
        assertEquals(4, history.size, "alice's history lines")
        check(history.all { it.direction == Direction.IN }) { "everything came in: $history" }
        check(history.all { it.memo.contains("Testkit Arena") }) { "memos name the issuer: ${history.map { it.memo }}" }
        assertEquals(ticket.id, history.last().instrumentId, "oldest line is the ticket")
        assertEquals(2, alice.history(2u).size, "history limit")
    }

    private fun verifyAndExport(): Unit = Fixture(testkit).use { f ->
        val wallet = f.wallet("w")
        val holder = wallet.newHolderKey()
        val ticket = wallet.import(f.kit.ticket(holder, "match-1", "Match"))
        val verified = wallet.verify(ticket.id)
        assertEquals(ticket.id, verified.id, "verified id")
        assertEquals(holder, verified.holder, "verified holder")
        assertEquals(0u, verified.sequence, "fresh from the issuer")
        assertEquals(64, verified.tip.length, "tip digest is hex")
        val exported = wallet.export(ticket.id)
        val again = assertThrows<WalletException.AlreadyHeld>("re-import") { wallet.import(exported) }
        check(again.errorMessage.contains(ticket.id)) { "message names the instrument: ${again.errorMessage}" }
    }

    private fun reopen(): Unit = Fixture(testkit).use { f ->
        val keystore = MemoryKeystore(generateStorageKey())
        val wallet = f.wallet("w", keystore)
        val account = wallet.accountKey()
        wallet.import(f.kit.note(wallet.newHolderKey(), "EUR", 50))
        wallet.close()
        val reopened = f.track(Wallet.open(f.path("w"), keystore))
        assertEquals(account, reopened.accountKey(), "same account")
        assertEquals(50uL, reopened.balance().single().available, "same money")
        assertEquals(2, keystore.calls, "the keystore is asked once per create and once per open")
        assertEquals(16, keystore.salts[0].size, "salt length")
        check(keystore.salts[0].contentEquals(keystore.salts[1])) { "the same wallet has the same salt" }
    }

    private fun wrongStorageKey(): Unit = Fixture(testkit).use { f ->
        val right = MemoryKeystore(generateStorageKey())
        f.wallet("w", right).close()
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

    private fun forgedTicket(): Unit = Fixture(testkit).use { f ->
        val wallet = f.wallet("w")
        val e = assertThrows<WalletException.Rejected>("forged ticket") {
            wallet.import(f.kit.forgedTicket(wallet.newHolderKey()))
        }
        check(e.errorMessage.contains("not in the trust list")) { "says why: ${e.errorMessage}" }
        assertEquals(0, wallet.tickets().size, "no ticket")
        assertEquals(0, wallet.history(10u).size, "no history")
    }

    private fun notOurs(): Unit = Fixture(testkit).use { f ->
        val alice = f.wallet("alice")
        val bob = f.wallet("bob")
        val forAlice = f.kit.ticket(alice.newHolderKey(), "concert-7", "Concert")
        val e = assertThrows<WalletException.NotOurs>("bob imports alice's ticket") { bob.import(forAlice) }
        check(e.errorMessage.contains("key this wallet does not have")) { "says why: ${e.errorMessage}" }
        alice.import(forAlice)
    }

    private fun lockedKeystore(): Unit = Fixture(testkit).use { f ->
        val e = assertThrows<WalletException.Keystore>("locked keystore") {
            Wallet.create(f.path("w"), LockedKeystore()).close()
        }
        check(e.errorMessage.contains("user not authenticated")) { "carries the app's text: ${e.errorMessage}" }
        // Nothing was written: the same path still takes a new wallet.
        f.track(Wallet.create(f.path("w"), MemoryKeystore(generateStorageKey())))
    }

    private fun brokenKeystore(): Unit = Fixture(testkit).use { f ->
        val e = assertThrows<WalletException.Keystore>("broken keystore") {
            Wallet.create(f.path("w"), BrokenKeystore()).close()
        }
        check(e.errorMessage.contains("keystore bug 42")) { "carries the exception's text: ${e.errorMessage}" }
        val short = assertThrows<WalletException.Keystore>("a 16-byte key") {
            Wallet.create(f.path("v"), MemoryKeystore(ByteArray(16))).close()
        }
        check(short.errorMessage.contains("16 bytes")) { "says what was wrong: ${short.errorMessage}" }
    }

    private fun malformedInput(): Unit = Fixture(testkit).use { f ->
        val wallet = f.wallet("w")
        assertThrows<WalletException.InvalidInput>("id not hex") { wallet.verify("not hex") }
        assertThrows<WalletException.UnknownInstrument>("unknown id") { wallet.export("00".repeat(16)) }
        assertThrows<WalletException.Decode>("garbage instrument") { wallet.import(ByteArray(40) { 0x55 }) }
        assertThrows<WalletException.Decode>("oversized instrument") { wallet.import(ByteArray(2_000_000)) }
        assertThrows<WalletException.Trust>("stale trust list") { wallet.installTrustList(f.kit.trustList(0)) }
        assertThrows<WalletException.RegistryMismatch>("another registry") {
            wallet.pinRegistry("11".repeat(32))
        }
        assertEquals(f.kit.registryKey, wallet.registryKey(), "pin unchanged")
        assertEquals(1uL, wallet.trustListVersion(), "trust list unchanged")
    }

    /**
     * Prints the cost per call of the cheapest exported calls against a plain
     * Kotlin call, in thread CPU time (the shared CI machine is loaded, and
     * wall time mostly measures waiting for a core). Never asserts on time.
     */
    private fun ffiCost(): Unit = Fixture(testkit).use { f ->
        val wallet = f.wallet("w")
        val threads = java.lang.management.ManagementFactory.getThreadMXBean()
        val n = 20_000
        fun measure(block: () -> Unit): Double {
            repeat(n) { block() } // warm the JIT
            val start = threads.currentThreadCpuTime
            repeat(n) { block() }
            return (threads.currentThreadCpuTime - start).toDouble() / n
        }
        var sink = 0
        val baseline = measure { sink += kotlinVersionString().length }
        val version = measure { sink += libraryVersion().length }
        val account = measure { sink += wallet.accountKey().length }
        println("ffi-cost: kotlin baseline          %10.1f ns/call (thread CPU)".format(baseline))
        println("ffi-cost: libraryVersion()         %10.1f ns/call  %6.0fx baseline".format(version, version / baseline))
        println("ffi-cost: wallet.accountKey()      %10.1f ns/call  %6.0fx baseline".format(account, account / baseline))
        check(sink > 0) { "calls ran" }
    }
}

/** The baseline: a Kotlin call that builds a short string, like libraryVersion does. */
fun kotlinVersionString(): String = StringBuilder("0.1.").append(0).toString()

fun main(args: Array<String>) {
    val testkit = System.getProperty("tessera.testkit") ?: error("-Dtessera.testkit=<path to tessera-ffi-testkit> is required")
    println("tessera-ffi ${libraryVersion()} on JVM ${System.getProperty("java.version")}")
    var passed = 0
    var failed = 0
    for ((name, test) in WalletTests(testkit).tests) {
        try {
            test()
            passed++
            println("ok   $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace(System.out)
        }
    }
    println("tessera-tests: $passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
