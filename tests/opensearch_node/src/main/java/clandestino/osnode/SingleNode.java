package clandestino.osnode;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.MockNode;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Starts one real OpenSearch node in this JVM: the server with its Netty4 transport, painless and
 * reindex modules (no security plug-in), bound to 127.0.0.1, through the test framework's
 * {@link MockNode}, which takes plug-ins as classes and, given none of its mock plug-ins, uses
 * the real services. Prints exactly one line, {@code URL http://127.0.0.1:PORT}, on stdout once
 * the node answers HTTP; logs go to stderr. Runs until its standard input closes.
 *
 * <p>Usage: {@code SingleNode WORKDIR [HTTP_PORT]} (HTTP_PORT 0 or absent: a free port). One node
 * of a cluster instead, with system properties {@code osnode.name}, {@code osnode.transport.port},
 * {@code osnode.seed.hosts} (every node's transport host:port, comma-separated) and
 * {@code osnode.initial.masters} (the first cluster-manager-eligible nodes' names).
 */
public final class SingleNode {
    private static final String NODE_NAME = System.getProperty("osnode.name", "node-0");
    private static final String SEED_HOSTS = System.getProperty("osnode.seed.hosts", "");
    private static final String INITIAL_MASTERS = System.getProperty("osnode.initial.masters", "");

    private static volatile Node node;

    private SingleNode() {}

    public static void main(String[] args) {
        // Logging setup may replace System.out and System.err: keep the real ones.
        PrintStream out = System.out;
        PrintStream err = System.err;
        if (args.length < 1 || args.length > 2) {
            err.println("usage: SingleNode WORKDIR [HTTP_PORT]");
            System.exit(2);
        }
        Thread stdinWatcher = new Thread(SingleNode::waitForStdinEof, "stdin-watcher");
        stdinWatcher.setDaemon(true);
        stdinWatcher.start();
        try {
            String url = start(Path.of(args[0]).toAbsolutePath(), args.length > 1 ? args[1] : "0");
            out.println("URL " + url);
            out.flush();
            stdinWatcher.join();
        } catch (Throwable e) {
            err.println("opensearch node failed to start:");
            e.printStackTrace(err);
            err.flush();
            Runtime.getRuntime().halt(1);
        }
    }

    private static String start(Path work, String httpPort) throws Exception {
        Path home = Files.createDirectories(work.resolve("home"));
        Path config = Files.createDirectories(home.resolve("config"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("modules"));
        Path data = Files.createDirectories(work.resolve("data"));
        Path logs = Files.createDirectories(work.resolve("logs"));
        Path log4jConfig = config.resolve("log4j2.properties");
        Files.writeString(
            log4jConfig,
            String.join(
                "\n",
                "status = error",
                "appender.console.type = Console",
                "appender.console.name = console",
                "appender.console.target = SYSTEM_ERR",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [" + NODE_NAME + "] %m%n",
                "rootLogger.level = " + System.getProperty("osnode.log.level", "info"),
                "rootLogger.appenderRef.console.ref = console",
                ""
            )
        );
        // Before log4j first looks for a configuration (the test framework jar has a log4j2-test one).
        System.setProperty("log4j2.configurationFile", log4jConfig.toString());

        Settings.Builder builder = Settings.builder();
        if (SEED_HOSTS.isEmpty()) {
            builder.put("discovery.type", "single-node");
        } else {
            builder.putList("discovery.seed_hosts", List.of(SEED_HOSTS.split(",")))
                .putList("cluster.initial_cluster_manager_nodes", List.of(INITIAL_MASTERS.split(",")));
        }
        Settings settings = builder
            .put("cluster.name", "clandestino-test")
            .put("node.name", NODE_NAME)
            .put("path.home", home.toString())
            .put("path.data", data.toString())
            .put("path.logs", logs.toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", System.getProperty("osnode.transport.port", "0"))
            .put("node.processors", Math.min(2, Runtime.getRuntime().availableProcessors()))
            // Tests must not fail because the disk of the machine is nearly full.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("indices.breaker.total.use_real_memory", false)
            .build();

        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(NODE_NAME);
        Environment environment = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> NODE_NAME);
        LogConfigurator.configure(environment);

        // The config directory is path.home/config, as MockNode's two-argument constructor (the
        // one both release lines have) assumes.
        Node started = new MockNode(
            environment.settings(),
            List.of(
                plugin("org.opensearch.transport.Netty4ModulePlugin", "org.opensearch.transport.Netty4Plugin"),
                plugin("org.opensearch.painless.PainlessModulePlugin", "org.opensearch.painless.PainlessPlugin"),
                plugin("org.opensearch.index.reindex.ReindexModulePlugin", "org.opensearch.index.reindex.ReindexPlugin")
            )
        );
        node = started;
        started.start();
        HttpServerTransport http = started.injector().getInstance(HttpServerTransport.class);
        int port = http.boundAddress().publishAddress().getPort();
        String url = "http://127.0.0.1:" + port;
        waitForHttp(url + "/_cluster/health?wait_for_status=green&timeout=50s", 120_000);
        waitForHttp(url + "/", 30_000);
        return url;
    }

    /** The module's plug-in class: 3.x added "Module" to the names 2.x had. */
    private static Class<? extends Plugin> plugin(String... names) throws ClassNotFoundException {
        for (String name : names) {
            try {
                return Class.forName(name).asSubclass(Plugin.class);
            } catch (ClassNotFoundException e) {
                // try the other line's name
            }
        }
        throw new ClassNotFoundException(String.join(" or ", names));
    }

    private static void waitForStdinEof() {
        InputStream in = System.in;
        byte[] buf = new byte[256];
        try {
            while (in.read(buf) >= 0) {
                // input is ignored: only its end matters
            }
        } catch (IOException e) {
            // treat as closed
        }
        Node current = node;
        int status = 0;
        if (current != null) {
            try {
                current.close();
                if (current.awaitClose(30, TimeUnit.SECONDS) == false) {
                    status = 3;
                }
            } catch (Exception e) {
                status = 3;
            }
        }
        Runtime.getRuntime().halt(status);
    }

    private static void waitForHttp(String url, long timeoutMillis) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        String last = "no answer";
        while (System.nanoTime() < deadline) {
            try {
                HttpURLConnection conn = (HttpURLConnection) URI.create(url).toURL().openConnection();
                conn.setConnectTimeout(2_000);
                conn.setReadTimeout(60_000);
                int code = conn.getResponseCode();
                InputStream body = code < 400 ? conn.getInputStream() : conn.getErrorStream();
                String text = body == null ? "" : new String(body.readAllBytes(), StandardCharsets.UTF_8);
                conn.disconnect();
                if (code == 200) {
                    return;
                }
                last = "HTTP " + code + " " + text;
            } catch (IOException e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("node did not answer " + url + " in time: " + last);
    }
}
