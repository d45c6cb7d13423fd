"""Hand-written tasks for the `similar_bad` scenario of bench/scenarios.py.

Each entry: (task, near_duplicate, paraphrase, near_duplicate_plan, paraphrase_plan).

- `task` is what the agent is asked (the queries are it and light variants of it).
- `near_duplicate` is stored case A: almost the same words as the task, so it is the most
  similar case to every query. Its plan is plausible but cuts a corner, and in the simulation it
  rarely works (hidden chance 0.15).
- `paraphrase` is stored case B: the same problem in other words, clearly less similar to the
  queries but on topic. Its plan is careful, and it works (hidden chance 0.9).

The plans are written per task (no shared template), so a retriever can only learn which case
helps from the outcomes, not from a phrase that recurs across tasks.
"""

TASKS: list[tuple[str, str, str, str, str]] = [
    (
        "Plan a three-day trip to Lisbon on a budget of 500 euros.",
        "Plan a three-day trip to Lisbon on a budget of 600 euros.",
        "I have roughly five hundred euros and a long weekend; organise my visit to Portugal's capital.",
        "Book the first hotel listed in the city centre and fill the days with the top ten sights.",
        "Price flights and hostels first, fix a daily spending cap, then pick free walking routes and one paid museum a day.",
    ),
    (
        "Find the cheapest train connection from Munich to Vienna next Friday morning.",
        "Find the cheapest train connection from Munich to Vienna next Saturday morning.",
        "Which rail ticket gets me from Bavaria's capital to Austria's for the least money before noon at the end of the week?",
        "Quote the standard fare printed on the operator's home page.",
        "Query both operators' journey planners for that date, compare saver fares and split tickets, and check the seat reservation fee.",
    ),
    (
        "Write a packing list for a week of hiking in the Scottish Highlands in October.",
        "Write a packing list for a week of hiking in the Scottish Highlands in September.",
        "What gear should I bring for seven days of autumn trekking across northern Scotland's mountains?",
        "List the usual summer camping items.",
        "Check the October forecast and midge season, then list layered waterproof clothing, navigation kit and emergency gear.",
    ),
    (
        "Fix the Python function that raises KeyError when the config file lacks a 'timeout' entry.",
        "Fix the Python function that raises KeyError when the config file lacks a 'retries' entry.",
        "My settings loader crashes if one optional setting is missing from the file; make it tolerate that.",
        "Wrap the whole function body in try/except and return None.",
        "Reproduce with a config lacking the key, read it with dict.get and a documented default, and add a test for the missing key.",
    ),
    (
        "Speed up a slow SQL query that joins orders and customers on customer_id.",
        "Speed up a slow SQL query that joins orders and products on product_id.",
        "A report that combines purchase records with client records takes minutes; make the database answer faster.",
        "Add more RAM to the database server.",
        "Run EXPLAIN, add an index on orders.customer_id, select only the needed columns, and compare timings before and after.",
    ),
    (
        "Write a bash script that deletes log files older than 30 days in /var/log/myapp.",
        "Write a bash script that deletes log files older than 60 days in /var/log/myapp.",
        "Automate removing my application's stale logs once they pass a month of age.",
        "Run rm -rf /var/log/myapp/* from cron.",
        "Use find with -mtime +30 and -name '*.log', print the matches in a dry run first, then delete with -delete and log what went.",
    ),
    (
        "Resolve a git merge conflict in package.json after rebasing onto main.",
        "Resolve a git merge conflict in package-lock.json after rebasing onto main.",
        "Rebasing my branch left the npm manifest with conflict markers; how do I settle it cleanly?",
        "Accept their version of the file and continue.",
        "Merge both sides' dependency changes by hand, regenerate the lockfile with npm install, run the tests, then git rebase --continue.",
    ),
    (
        "Convert a CSV of 2 million rows to Parquet without running out of memory.",
        "Convert a CSV of 3 million rows to Parquet without running out of memory.",
        "My spreadsheet export is too large to load at once; turn it into a columnar file on a small machine.",
        "Load it with pandas.read_csv and call to_parquet.",
        "Stream it in chunks with pyarrow's CSV reader, write each batch to a ParquetWriter with an explicit schema, and check the row count.",
    ),
    (
        "Compute the monthly churn rate from a table of subscription start and end dates.",
        "Compute the weekly churn rate from a table of subscription start and end dates.",
        "How many customers do we lose each month, given when every membership began and ended?",
        "Divide the number of cancellations by the total number of customers ever.",
        "For each month count subscribers active at its start and those who ended during it, divide, and handle open subscriptions as active.",
    ),
    (
        "Detect outliers in daily sensor temperature readings from a greenhouse.",
        "Detect outliers in hourly sensor temperature readings from a greenhouse.",
        "Some of our plant-house thermometer values look wrong; find the suspicious days.",
        "Drop every reading above the mean.",
        "Plot the series, fit a rolling median with a robust spread (MAD), flag points beyond three spreads, and review flagged days against maintenance logs.",
    ),
    (
        "Deduplicate customer records that differ only in spelling of names and addresses.",
        "Deduplicate supplier records that differ only in spelling of names and addresses.",
        "Our client list has the same people entered several times with typos; merge them.",
        "Remove rows whose names are exactly equal.",
        "Normalise case and whitespace, block on postcode, score name and address pairs with a fuzzy string distance, and review matches above a threshold.",
    ),
    (
        "Estimate the half-life of a radioactive sample from counts measured every hour.",
        "Estimate the half-life of a radioactive sample from counts measured every minute.",
        "Given hourly detector readings of a decaying isotope, how long does it take for its activity to halve?",
        "Take the time at which the count first drops below half the first count.",
        "Subtract background, fit log(counts) against time by weighted least squares, and convert the slope to a half-life with its uncertainty.",
    ),
    (
        "Balance the chemical equation for the combustion of propane.",
        "Balance the chemical equation for the combustion of butane.",
        "Write the correctly weighted reaction for burning C3H8 in oxygen.",
        "Put a coefficient of one on every molecule.",
        "Balance carbon first, then hydrogen, then oxygen: C3H8 + 5 O2 -> 3 CO2 + 4 H2O, and count atoms on both sides.",
    ),
    (
        "Design an experiment to test whether caffeine affects reaction time in students.",
        "Design an experiment to test whether caffeine affects reaction time in athletes.",
        "How would I find out if coffee makes undergraduates respond faster?",
        "Ask a few friends whether coffee makes them feel quicker.",
        "Use a double-blind crossover with placebo, randomised order, a fixed reaction-time task, a power calculation for sample size, and a paired test.",
    ),
    (
        "Calculate the orbital period of a satellite at 700 km altitude above Earth.",
        "Calculate the orbital period of a satellite at 800 km altitude above Earth.",
        "How long does a spacecraft circling our planet at seven hundred kilometres up take per revolution?",
        "Use the Moon's period scaled by the ratio of distances.",
        "Add Earth's radius to the altitude, apply Kepler's third law T = 2*pi*sqrt(a^3/GM), and check the result is near 99 minutes.",
    ),
    (
        "Bake sourdough bread with a crisp crust in a home oven.",
        "Bake sourdough bread with a soft crust in a home oven.",
        "How do I get a crunchy, blistered outside on naturally leavened loaves in my kitchen?",
        "Bake at 180 degrees for an hour on a tray.",
        "Preheat a Dutch oven at 250 degrees, bake covered for 20 minutes to trap steam, then uncovered for 20 to 25 minutes until deep brown.",
    ),
    (
        "Make a vegan substitute for eggs in chocolate brownies.",
        "Make a vegan substitute for eggs in chocolate brownie batter.",
        "What can replace the eggs in fudgy cocoa squares if I don't eat animal products?",
        "Leave the eggs out and add more flour.",
        "Use flax eggs (one tablespoon of ground flax with three of water per egg), rest them ten minutes, and reduce baking time slightly.",
    ),
    (
        "Adjust a cookie recipe for baking at high altitude in Denver.",
        "Adjust a cake recipe for baking at high altitude in Denver.",
        "My biscuits spread flat since moving to a mile above sea level; how should I change the formula?",
        "Bake the cookies longer at the same temperature.",
        "Reduce baking soda and sugar slightly, add a little flour and liquid, raise the oven by 15 degrees and shorten the time.",
    ),
    (
        "Write a cover letter for a junior data analyst position at a bank.",
        "Write a cover letter for a junior data analyst position at an insurer.",
        "Draft an application note for an entry-level analytics role at a financial institution.",
        "Reuse a generic letter and change the company name.",
        "Read the posting, match two of my projects to its requirements with numbers, name the team, and keep it under one page.",
    ),
    (
        "Prepare a 10-minute talk explaining neural networks to high school students.",
        "Prepare a 20-minute talk explaining neural networks to high school students.",
        "How should I present how deep learning works to teenagers in a short class session?",
        "Show the backpropagation equations on slides.",
        "Start from a hands-on analogy, show a tiny network classifying drawings live, keep one idea per slide, and end with a question round.",
    ),
    (
        "Translate a restaurant menu from French to English while keeping dish names recognizable.",
        "Translate a restaurant menu from Italian to English while keeping dish names recognizable.",
        "Render our bistro's bill of fare for English speakers but keep the famous Gallic dish titles.",
        "Put the whole menu through word-for-word translation.",
        "Keep classic dish names in French, add a short English description under each, and check allergens and culinary terms with a chef.",
    ),
    (
        "Negotiate a lower rent with my landlord when the lease renews in March.",
        "Negotiate a lower rent with my landlord when the lease renews in April.",
        "My tenancy is up for renewal in spring; how can I persuade the owner to charge me less?",
        "Threaten to leave immediately unless the rent drops.",
        "Collect comparable listings, note my record of paying on time, propose a specific figure with a longer term, and ask in writing early.",
    ),
    (
        "Set up a monthly household budget for a family of four with one income.",
        "Set up a monthly household budget for a family of three with one income.",
        "Two adults, two kids, a single salary: help us plan where the money goes each month.",
        "Split the salary equally across ten categories.",
        "Track three months of real spending, list fixed costs first, set category caps from the data, and keep a small emergency line.",
    ),
    (
        "Choose a laptop for video editing under 1500 dollars.",
        "Choose a laptop for photo editing under 1500 dollars.",
        "Which portable computer should I buy for cutting films if I can spend about fifteen hundred?",
        "Buy the one with the most CPU cores.",
        "Check the editor's recommended specs, compare GPU, RAM (32 GB), screen colour coverage and thermals in reviews, and price three shortlisted models.",
    ),
    (
        "Troubleshoot a home Wi-Fi network that drops every evening.",
        "Troubleshoot a home Wi-Fi network that drops every morning.",
        "Our wireless internet at home keeps cutting out at night; find the cause.",
        "Restart the router every evening.",
        "Log when drops happen, scan for channel congestion, update router firmware, move to a less crowded channel or 5 GHz, and check the modem's logs.",
    ),
    (
        "Grow tomatoes on a north-facing balcony in a cool climate.",
        "Grow tomatoes on a north-facing balcony in a cool, windy climate.",
        "Is it possible to raise a crop of these red fruits on a shady terrace where summers are mild?",
        "Plant beefsteak seeds directly in small pots in May.",
        "Choose early cherry varieties, start seedlings indoors, use large dark pots and a reflective wall, and feed with potash once flowering begins.",
    ),
    (
        "Train a puppy to stop biting hands during play.",
        "Train a puppy to stop biting hands during walks.",
        "My young dog nips at my fingers whenever we wrestle; how can that habit be unlearned?",
        "Tap the puppy's nose every time it bites.",
        "Stop play with a calm yelp when teeth touch skin, redirect to a chew toy, reward gentle mouthing, and keep sessions short and consistent.",
    ),
    (
        "Write a SQL migration that renames a column without downtime in PostgreSQL.",
        "Write a SQL migration that drops a column without downtime in PostgreSQL.",
        "How can I change a field's name in a live Postgres database while the app keeps running?",
        "Run ALTER TABLE ... RENAME COLUMN during business hours.",
        "Add the new column, dual-write from the app, backfill in batches, switch reads, then drop the old column in a later release.",
    ),
    (
        "Summarize a 40-page research paper on climate models for a policy audience.",
        "Summarize a 60-page research paper on climate models for a policy audience.",
        "Turn a long scientific article about global warming simulations into a brief for decision makers.",
        "Copy the abstract and conclusion.",
        "Extract the question, key findings with their uncertainty ranges, and policy-relevant implications, then write a one-page brief in plain words and check numbers against the paper.",
    ),
    (
        "Forecast next quarter's sales from three years of weekly sales data.",
        "Forecast next quarter's sales from five years of weekly sales data.",
        "Predict the coming three months of revenue using our weekly figures since three years ago.",
        "Repeat last quarter's total.",
        "Plot trend and seasonality, hold out the last quarter, compare a seasonal naive baseline with exponential smoothing, and report the forecast with intervals.",
    ),
]
