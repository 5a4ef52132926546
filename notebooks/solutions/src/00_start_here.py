# %% [markdown]
# # 00 · Solutions: Start here
#
# Worked answers to the exercises of [00 · Start here](../00_start_here.ipynb). Try each one
# yourself first; every answer below is computed, then handed to the same `check` the
# notebook calls.
#
# **Next:** [01 · Solutions](01_account_key.ipynb)

# %%
from acmelab import course, display
from acmelab.exercises import check

# %% [markdown]
# ## 00.1 · The validation level of a real Let's Encrypt certificate
#
# A certificate names its level with a CA/Browser Forum policy OID in its Certificate Policies
# extension. Let's Encrypt's certificates carry `2.23.140.1.2.1`, which the Baseline
# Requirements define as domain validated: Let's Encrypt issues DV only.

# %%
print("2.23.140.1.2.1 ->", display.CABF_POLICIES["2.23.140.1.2.1"])
check("00.1", "DV")

# %% [markdown]
# ## 00.2 · How many roots the course's Pebble serves
#
# The course runs Pebble with one alternate chain (`PEBBLE_ALTERNATE_ROOTS=1`), so its
# management API serves two roots: the default one and the alternate one.

# %%
lab = course.lab()
print("roots:", len(lab.roots()), "| PEBBLE_ALTERNATE_ROOTS =", course.LAB_PEBBLE_ENV["PEBBLE_ALTERNATE_ROOTS"])
check("00.2", len(lab.roots()))

# %% [markdown]
# ## 00.3 · Let's Encrypt's three profiles
#
# The directory's `meta.profiles` lists them; the lab's Pebble offers the same three as Let's
# Encrypt (as of 2026).

# %%
profiles = sorted(course.client().directory.profiles)
print(profiles)
check("00.3", profiles)

# %% [markdown]
# **Next:** [01 · Solutions](01_account_key.ipynb) · Back to [00 · Start here](../00_start_here.ipynb)
