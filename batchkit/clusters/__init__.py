"""Clusters on AWS: each one CloudFormation stack, created, updated, deleted and inspected.

`stacks.ClusterStacks` is what the CLI uses; `stackdeploy` renders the cluster's template (`infra`)
and drives a create or an update, `stacktemplate` decides how the template reaches CloudFormation.
The CloudFormation calls themselves, the teardown and the leftover check are gateways in
`providers.aws` (`stackgateway`, `stackevents`, `stackteardown`, `leftovers`).
"""
