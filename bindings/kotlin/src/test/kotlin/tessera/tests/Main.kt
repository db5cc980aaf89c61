// The JVM suite's entry point: run by scripts/test.d/60-kotlin.sh with the
// registry it started. See bindings/README.md.
package tessera.tests

import java.io.File
import java.nio.file.Files
import uniffi.tessera.libraryVersion

fun main() {
    fun property(name: String) = System.getProperty(name) ?: error("-D$name is required (see 60-kotlin.sh)")
    val registry = Registry(property("tessera.registry.url"), property("tessera.registry.keyfile"), property("tessera.testkit"))
    println("tessera-ffi ${libraryVersion()} on JVM ${System.getProperty("java.version")}, registry ${registry.url}")
    val event = "concert-" + System.nanoTime().toString(36)
    val gateDir = File(Files.createTempDirectory("tessera-gate").toFile(), "gate")
    val gateKey = registry.setupEvent(event, gateDir)
    println("event $event, gate ${gateKey.take(16)}…")
    var passed = 0
    var failed = 0
    val suites = WalletTests(registry, event).tests + FlowTests(registry, event, gateDir).tests +
        tessera.demo.AppLogicTests(registry.url, event).tests
    for ((name, test) in suites) {
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
    gateDir.parentFile.deleteRecursively()
    println("tessera-tests: $passed passed, $failed failed")
    kotlin.system.exitProcess(if (failed > 0) 1 else 0)
}
