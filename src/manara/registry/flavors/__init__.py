"""Model flavors: how each framework's models are saved safely and loaded back."""

from manara.registry.flavors.base import Flavor, NativePredictor, flavor_by_name, flavor_for

__all__ = ["Flavor", "NativePredictor", "flavor_by_name", "flavor_for"]
