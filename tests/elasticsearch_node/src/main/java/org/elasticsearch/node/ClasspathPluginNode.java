package org.elasticsearch.node;

import java.util.Collection;
import java.util.List;

import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

/**
 * A real {@link Node} whose plugins are classes on the classpath (loaded by the test framework's
 * {@link MockPluginsService}, as {@code MockNode} does), without any of {@code MockNode}'s mock
 * services and without {@code ESTestCase}, which needs the randomized-testing runner. It lives in
 * this package because {@link NodeConstruction} and {@link NodeServiceProvider} are package-private.
 */
public class ClasspathPluginNode extends Node {

    public ClasspathPluginNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(NodeConstruction.prepareConstruction(environment, null, new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader pluginsLoader) {
                return new MockPluginsService(env.settings(), env, List.copyOf(plugins));
            }
        }, true));
    }
}
