// A stand-in for the Forge/NeoForge installer: `java -jar installer.jar --installServer` writes
// what a real one writes (libraries/<group>/<version>/unix_args.txt, user_jvm_args.txt, run.sh
// and the server's library jar, here this very jar, which also holds FakeServer), printing
// progress lines. Its settings come from fake-installer.properties packed into the jar; with
// fail=true it writes part of the libraries, prints an exception and exits 1 half way.

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Properties;

public final class FakeInstaller {
    public static void main(String[] args) throws Exception {
        if (args.length != 1 || !args[0].equals("--installServer")) {
            System.out.println("usage: java -jar installer.jar --installServer");
            System.exit(2);
        }
        Properties settings = new Properties();
        try (InputStream in = FakeInstaller.class.getResourceAsStream("/fake-installer.properties")) {
            settings.load(in);
        }
        Path cwd = Paths.get("").toAbsolutePath();
        Path unixArgs = cwd.resolve(settings.getProperty("unix_args"));
        Path library = unixArgs.getParent().resolve("server.jar");
        System.out.println("JVM info: stand-in installer");
        System.out.println("Target Directory: " + cwd);
        System.out.println("Extracting main jar:");
        Files.createDirectories(library.getParent());
        Path self = Paths.get(FakeInstaller.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        Files.copy(self, library, StandardCopyOption.REPLACE_EXISTING);
        System.out.println("  Extracted: " + cwd.relativize(library));
        System.out.println("Downloading libraries");
        if ("true".equals(settings.getProperty("fail"))) {
            Files.writeString(cwd.resolve("libraries/partial.jar.part"), "half");
            System.out.println("Considering library net.minecraft:server:" + settings.getProperty("minecraft"));
            System.out.println("  Downloading library from https://piston-data.mojang.com/server.jar");
            System.out.println("java.io.IOException: Failed to download net.minecraft:server: connection reset");
            System.out.println("There was an error during installation");
            System.exit(1);
        }
        String relative = cwd.relativize(library).toString();
        Files.writeString(unixArgs, "-Dfake.logStyle=neoforge\n-cp " + relative + "\nFakeServer\n", StandardCharsets.UTF_8);
        Files.writeString(cwd.resolve("user_jvm_args.txt"),
            "# Xmx and Xms set the maximum and minimum RAM usage, respectively.\n"
            + "# Note: Not including an Xmx value will use a default chosen by the JVM.\n", StandardCharsets.UTF_8);
        Files.writeString(cwd.resolve("run.sh"),
            "#!/usr/bin/env sh\njava @user_jvm_args.txt @" + cwd.relativize(unixArgs) + " \"$@\"\n", StandardCharsets.UTF_8);
        System.out.println("The server installed successfully");
    }
}
