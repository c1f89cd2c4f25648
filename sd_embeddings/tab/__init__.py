"""The tab's view model, the insertion policy, the extension's HTTP routes and preview uploads."""
