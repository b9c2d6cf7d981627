"""Operating Kiln: workers, the janitor and reconciler loop, operator views, doctor,
metrics and admission control. Imports anything below; only ``service`` and the CLI
import it.
"""
