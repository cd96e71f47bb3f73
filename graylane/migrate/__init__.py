"""Migration off ingress-nginx: canary Ingresses -> Upstreams + CanaryRoutes with the same behaviour (pure).

``plan.import_ingresses(objects, options)`` reads Ingress (and Service) objects, pairs every canary Ingress
with its main Ingress (``pairing``), translates the canary annotations into ordered rules and a weight
(``canary``, ``pattern``), maps paths (``paths``) and TLS (``tls``), lists every annotation not carried over
(``annotations``) and returns the routes with their findings (``model``). ``graylane import ingress-nginx``
(:mod:`graylane.cli.importer`) reads the files or the cluster and writes the YAML.
"""
