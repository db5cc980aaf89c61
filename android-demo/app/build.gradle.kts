// The demo app over tessera-ffi. Not built on the CI machine (no Android
// SDK there); its logic (src/main/kotlin/tessera/demo/logic) and unit tests
// (src/test) are compiled and run on the JVM by scripts/test.d/60-kotlin.sh.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
    id("org.jetbrains.kotlin.plugin.compose")
}

android {
    namespace = "tessera.demo"
    compileSdk = 35
    defaultConfig {
        applicationId = "tessera.demo"
        minSdk = 26 // HostApduService and reader mode are older; JNA's aar wants 24+
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }
    sourceSets["main"].java.srcDirs(
        "src/main/kotlin",
        // The generated bindings, exactly as checked in (regenerate them from the library you ship).
        "../../bindings/kotlin/src/main/kotlin",
    )
    // libtessera_ffi.so per ABI, from `cargo ndk` (see README.md).
    sourceSets["main"].jniLibs.srcDirs("src/main/jniLibs")
    buildFeatures { compose = true }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("net.java.dev.jna:jna:5.13.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
    implementation("androidx.activity:activity-compose:1.10.1")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.9.0")
    implementation(platform("androidx.compose:compose-bom:2025.05.00"))
    implementation("androidx.compose.material3:material3")
    implementation("androidx.security:security-crypto:1.1.0-alpha07")
}
